using System.Text.Json;

namespace QuantSharp.IO.Tokenization;

/// <summary>The components of a tokenizer.json, validated and ready to run.</summary>
internal sealed record TokenizerParts(
    BpeModel Model,
    string?[] IdToToken,
    Dictionary<string, int> TokenToId,
    IReadOnlyList<AddedToken> AddedTokens,
    Normalizer? Normalizer,
    PreTokenizer? PreTokenizer,
    PostProcessor PostProcessor,
    TokenDecoder Decoder);

/// <summary>
/// Reads a Hugging Face tokenizer.json with a BPE model. Every problem, from a missing file to a merge that names a
/// token the vocabulary lacks, is an <see cref="InvalidFileException"/> naming the file; components this tokenizer
/// does not implement are refused by name rather than silently ignored, since ignoring one changes the ids.
/// </summary>
internal static class TokenizerJsonLoader
{
    public static TokenizerParts Load(string path)
    {
        var r = new JsonReader(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw r.Fail("file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw r.Fail($"cannot be read: {e.Message}", e);
        }

        using JsonDocument doc = r.Parse(text);
        JsonElement root = r.Object(doc.RootElement, "$");

        JsonElement model = r.Object(r.Required(root, "model", "$"), "$.model");
        // tokenizers reads an untagged model by its fields; vocab + merges means BPE.
        string modelType = JsonReader.Optional(model, "type") is JsonElement t ? r.String(t, "$.model.type") : "BPE";
        if (modelType != "BPE") throw r.Fail($"model type '{modelType}' is not supported (only BPE)");

        Dictionary<string, int> vocab = ReadVocab(r, model);
        var addedTokens = ReadAddedTokens(r, root);
        BpeModel bpe = ReadBpe(r, model, vocab);

        // Id <-> token tables over the model vocabulary and the added tokens (which win where both name an id).
        int size = 0;
        foreach (int id in vocab.Values) size = Math.Max(size, id + 1);
        foreach (var a in addedTokens) size = Math.Max(size, a.Id + 1);
        var idToToken = new string?[size];
        var tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach ((string token, int id) in vocab) idToToken[id] = token;
        foreach (var a in addedTokens)
        {
            idToToken[a.Id] = a.Content;
            tokenToId[a.Content] = a.Id;
        }

        Normalizer? normalizer = JsonReader.Optional(root, "normalizer") is JsonElement n ? ReadNormalizer(r, n, "$.normalizer") : null;
        PreTokenizer? pre = JsonReader.Optional(root, "pre_tokenizer") is JsonElement p ? ReadPreTokenizer(r, p, "$.pre_tokenizer") : null;
        PostProcessor post = JsonReader.Optional(root, "post_processor") is JsonElement q
            ? ReadPostProcessor(r, q, "$.post_processor", tokenToId) : PostProcessor.None;
        TokenDecoder decoder = ReadDecoder(r, JsonReader.Optional(root, "decoder"), "$.decoder", pre?.IsByteLevel == true);

        return new TokenizerParts(bpe, idToToken, tokenToId, addedTokens, normalizer, pre, post, decoder);
    }

    private static Dictionary<string, int> ReadVocab(JsonReader r, JsonElement model)
    {
        JsonElement vocabJson = r.Object(r.Required(model, "vocab", "$.model"), "$.model.vocab");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in vocabJson.EnumerateObject())
        {
            int id = r.Int(entry.Value, $"$.model.vocab[\"{entry.Name}\"]");
            if (id < 0) throw r.Fail($"vocab token '{entry.Name}' has negative id {id}");
            vocab[entry.Name] = id;
        }
        return vocab;
    }

    private static BpeModel ReadBpe(JsonReader r, JsonElement model, Dictionary<string, int> vocab)
    {
        string? prefix = r.OptionalString(model, "continuing_subword_prefix", "$.model");
        string? suffix = r.OptionalString(model, "end_of_word_suffix", "$.model");

        JsonElement mergesJson = r.Array(r.Required(model, "merges", "$.model"), "$.model.merges");
        var merges = new Dictionary<long, BpeModel.Merge>(mergesJson.GetArrayLength());
        int rank = 0;
        foreach (JsonElement m in mergesJson.EnumerateArray())
        {
            string where = $"$.model.merges[{rank}]";
            (string left, string right) = ReadMerge(r, m, where);
            int leftId = LookUp(r, vocab, left, where);
            int rightId = LookUp(r, vocab, right, where);
            // With a subword prefix the right part loses it when merged ("##b" + "##c" -> "##bc").
            string merged = left + (prefix is { Length: > 0 } && right.StartsWith(prefix, StringComparison.Ordinal) ? right[prefix.Length..] : right);
            if (!vocab.TryGetValue(merged, out int newId))
                throw r.Fail($"merge #{rank} ('{left}' + '{right}') makes '{merged}', which is not in the vocab");
            // A repeated pair takes its last rank, as tokenizers' map collection does.
            merges[BpeModel.PairKey(leftId, rightId)] = new BpeModel.Merge(rank, newId);
            rank++;
        }

        int? unkId = null;
        if (r.OptionalString(model, "unk_token", "$.model") is string unk)
            unkId = vocab.TryGetValue(unk, out int u) ? u : throw r.Fail($"unk_token '{unk}' is not in the vocab");

        return new BpeModel(vocab, merges, unkId,
            fuseUnk: r.Bool(model, "fuse_unk", "$.model", false),
            byteFallback: r.Bool(model, "byte_fallback", "$.model", false),
            ignoreMerges: r.Bool(model, "ignore_merges", "$.model", false),
            prefix, suffix);
    }

    // Merges come as ["a", "b"] (tokenizers >= 0.20) or, in older files, as "a b".
    private static (string, string) ReadMerge(JsonReader r, JsonElement m, string where)
    {
        if (m.ValueKind == JsonValueKind.String)
        {
            string s = m.GetString()!;
            int space = s.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0 || space == s.Length - 1 || s.IndexOf(' ', space + 1) >= 0)
                throw r.Fail($"'{where}' \"{s}\" is not two tokens separated by one space");
            return (s[..space], s[(space + 1)..]);
        }
        if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
            return (r.String(m[0], where + "[0]"), r.String(m[1], where + "[1]"));
        throw r.Fail($"'{where}' must be \"a b\" or [\"a\", \"b\"]");
    }

    private static int LookUp(JsonReader r, Dictionary<string, int> vocab, string token, string where) =>
        vocab.TryGetValue(token, out int id) ? id : throw r.Fail($"'{where}' refers to token '{token}', which is not in the vocab");

    private static List<AddedToken> ReadAddedTokens(JsonReader r, JsonElement root)
    {
        var list = new List<AddedToken>();
        if (JsonReader.Optional(root, "added_tokens") is not JsonElement arr) return list;
        int k = 0;
        foreach (JsonElement e in r.Array(arr, "$.added_tokens").EnumerateArray())
        {
            string where = $"$.added_tokens[{k++}]";
            r.Object(e, where);
            int id = r.Int(r.Required(e, "id", where), where + ".id");
            if (id < 0) throw r.Fail($"'{where}.id' is negative");
            string content = r.String(r.Required(e, "content", where), where + ".content");
            if (content.Length == 0) throw r.Fail($"'{where}.content' is empty");
            list.Add(new AddedToken(id, content,
                Special: r.Bool(e, "special", where, false),
                SingleWord: r.Bool(e, "single_word", where, false),
                LStrip: r.Bool(e, "lstrip", where, false),
                RStrip: r.Bool(e, "rstrip", where, false),
                Normalized: r.Bool(e, "normalized", where, true)));
        }
        return list;
    }

    private static Normalizer ReadNormalizer(JsonReader r, JsonElement e, string path)
    {
        var steps = new List<Func<string, string>>();
        AddNormalizerSteps(r, e, path, steps);
        return Normalizer.Of(steps);
    }

    private static void AddNormalizerSteps(JsonReader r, JsonElement e, string path, List<Func<string, string>> steps)
    {
        string type = r.Type(e, path);
        if (type == "Sequence")
        {
            int k = 0;
            foreach (JsonElement inner in r.Array(r.Required(e, "normalizers", path), path + ".normalizers").EnumerateArray())
                AddNormalizerSteps(r, inner, $"{path}.normalizers[{k++}]", steps);
            return;
        }
        steps.Add(Normalizer.Step(type) ?? throw r.Fail($"normalizer type '{type}' at '{path}' is not supported"));
    }

    private static PreTokenizer ReadPreTokenizer(JsonReader r, JsonElement e, string path)
    {
        string type = r.Type(e, path);
        switch (type)
        {
            case "ByteLevel":
                return new ByteLevelPreTokenizer(
                    addPrefixSpace: r.Bool(e, "add_prefix_space", path, true),
                    useRegex: r.Bool(e, "use_regex", path, true));
            case "Sequence":
            {
                var stages = new List<PreTokenizer>();
                int k = 0;
                foreach (JsonElement inner in r.Array(r.Required(e, "pretokenizers", path), path + ".pretokenizers").EnumerateArray())
                    stages.Add(ReadPreTokenizer(r, inner, $"{path}.pretokenizers[{k++}]"));
                return new SequencePreTokenizer(stages);
            }
            case "Split":
            {
                JsonElement pattern = r.Object(r.Required(e, "pattern", path), path + ".pattern");
                SplitBehavior behavior;
                try
                {
                    behavior = SplitBehaviors.Parse(r.String(r.Required(e, "behavior", path), path + ".behavior"));
                }
                catch (FormatException fe)
                {
                    throw r.Fail($"'{path}.behavior': {fe.Message}", fe);
                }
                return new SplitPreTokenizer(ReadPattern(r, pattern, path + ".pattern"), behavior, r.Bool(e, "invert", path, false));
            }
            case "Digits":
                // tokenizers splits on char::is_numeric, i.e. \p{N}: each digit alone, or runs of digits together.
                return new SplitPreTokenizer(CodePointRegex.FromOniguruma(@"\p{N}"),
                    r.Bool(e, "individual_digits", path, false) ? SplitBehavior.Isolated : SplitBehavior.Contiguous, invert: false);
            default:
                throw r.Fail($"pre_tokenizer type '{type}' at '{path}' is not supported");
        }
    }

    private static CodePointRegex ReadPattern(JsonReader r, JsonElement pattern, string path)
    {
        if (JsonReader.Optional(pattern, "String") is JsonElement s)
            return CodePointRegex.FromLiteral(r.String(s, path + ".String"));
        string regex = r.String(r.Required(pattern, "Regex", path), path + ".Regex");
        try
        {
            return CodePointRegex.FromOniguruma(regex);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw r.Fail($"regex at '{path}' cannot be used: {ex.Message} (pattern: {regex})", ex);
        }
    }

    private static PostProcessor ReadPostProcessor(JsonReader r, JsonElement e, string path, Dictionary<string, int> tokenToId)
    {
        string type = r.Type(e, path);
        switch (type)
        {
            case "ByteLevel":
                return PostProcessor.None; // only trims offsets
            case "Sequence":
            {
                PostProcessor acc = PostProcessor.None;
                int k = 0;
                foreach (JsonElement inner in r.Array(r.Required(e, "processors", path), path + ".processors").EnumerateArray())
                    acc = PostProcessor.Chain(acc, ReadPostProcessor(r, inner, $"{path}.processors[{k++}]", tokenToId));
                return acc;
            }
            case "TemplateProcessing":
                return ReadTemplate(r, e, path);
            case "RobertaProcessing" or "BertProcessing":
            {
                // "cls": ["<s>", 0], "sep": ["</s>", 2]: single sequence = cls A sep.
                int Id(string name)
                {
                    JsonElement pair = r.Array(r.Required(e, name, path), $"{path}.{name}");
                    if (pair.GetArrayLength() != 2) throw r.Fail($"'{path}.{name}' must be [token, id]");
                    return r.Int(pair[1], $"{path}.{name}[1]");
                }
                return new PostProcessor([Id("cls")], [Id("sep")]);
            }
            default:
                throw r.Fail($"post_processor type '{type}' at '{path}' is not supported");
        }
    }

    private static PostProcessor ReadTemplate(JsonReader r, JsonElement e, string path)
    {
        JsonElement specials = JsonReader.Optional(e, "special_tokens") is JsonElement s ? r.Object(s, path + ".special_tokens") : default;
        var prefix = new List<int>();
        var suffix = new List<int>();
        bool seenSequence = false;
        int k = 0;
        foreach (JsonElement item in r.Array(r.Required(e, "single", path), path + ".single").EnumerateArray())
        {
            string where = $"{path}.single[{k++}]";
            r.Object(item, where);
            if (JsonReader.Optional(item, "Sequence") is not null)
            {
                seenSequence = true;
                continue;
            }
            JsonElement special = r.Object(r.Required(item, "SpecialToken", where), where + ".SpecialToken");
            string name = r.String(r.Required(special, "id", where + ".SpecialToken"), where + ".SpecialToken.id");
            if (specials.ValueKind != JsonValueKind.Object || JsonReader.Optional(specials, name) is not JsonElement def)
                throw r.Fail($"'{where}' uses special token '{name}', which '{path}.special_tokens' does not define");
            string defPath = $"{path}.special_tokens[\"{name}\"]";
            foreach (JsonElement id in r.Array(r.Required(def, "ids", defPath), defPath + ".ids").EnumerateArray())
                (seenSequence ? suffix : prefix).Add(r.Int(id, defPath + ".ids[]"));
        }
        if (!seenSequence) throw r.Fail($"'{path}.single' has no Sequence item");
        return new PostProcessor(prefix.ToArray(), suffix.ToArray());
    }

    private static TokenDecoder ReadDecoder(JsonReader r, JsonElement? e, string path, bool byteLevelPreTokenizer)
    {
        // tokenizers joins tokens with spaces when there is no decoder; for a byte-level vocabulary that yields
        // "Ġ"-strewn text nobody wants, so the byte-level inverse is used whenever the pre-tokenizer is byte-level.
        if (e is not JsonElement d) return byteLevelPreTokenizer ? TokenDecoder.ByteLevel : TokenDecoder.JoinWithSpaces;
        string type = r.Type(d, path);
        if (type == "ByteLevel") return TokenDecoder.ByteLevel;
        if (type == "Sequence")
        {
            // Only sequences that come down to ByteLevel (as some converted tokenizers write it) are understood.
            var inner = r.Array(r.Required(d, "decoders", path), path + ".decoders").EnumerateArray().ToList();
            if (inner.Count == 1) return ReadDecoder(r, inner[0], path + ".decoders[0]", byteLevelPreTokenizer);
        }
        throw r.Fail($"decoder type '{type}' at '{path}' is not supported (only ByteLevel)");
    }
}
