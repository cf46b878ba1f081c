using System.Text.Json;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf;

/// <summary>
/// tokenizer.ggml.* metadata for a byte-level BPE tokenizer.json: model "gpt2", the pre-tokenizer name llama.cpp maps
/// to the same split regex, the tokens (spelled in GPT-2's byte alphabet, as in the vocab), their types, the merges
/// as "left right" strings, and the special ids. The tokenizer.json itself is kept under tokenizer.huggingface.json
/// (a key the GGUF specification defines) so QuantSharp can rebuild its exact tokenizer from the file.
/// </summary>
public static class GgufTokenizerMetadata
{
    // Token types of llama.cpp's vocab (llama_token_type).
    private const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    // The plain ByteLevel pre-tokenizer (use_regex) splits with GPT-2's regex; llama.cpp's "gpt-2" pre type (LLAMA_VOCAB_PRE_TYPE_GPT2) uses exactly
    // that regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+).
    private const string Gpt2Pre = "gpt-2";
    private const string Llama3Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private const string Qwen2Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    public static void Add(GgufWriter writer, string modelDir, int vocabSize, int? configBos, IReadOnlyList<int> configEos)
    {
        string path = Path.Combine(modelDir, "tokenizer.json");
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: tokenizer.json not found (GGUF needs the vocabulary).");
        string json = File.ReadAllText(path);
        using var doc = Parse(json, path);
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        if (model.TryGetProperty("type", out var type) && type.GetString() != "BPE")
            throw new InvalidFileException(path, $"model type '{type.GetString()}' cannot be written as a GGUF gpt2 tokenizer (only BPE)");

        var tokens = new string?[vocabSize];
        var types = new int[vocabSize];
        foreach (var entry in model.GetProperty("vocab").EnumerateObject())
            Place(tokens, types, entry.Value.GetInt32(), entry.Name, Normal, path);
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var added))
            foreach (var a in added.EnumerateArray())
            {
                string content = a.GetProperty("content").GetString()!;
                int id = a.GetProperty("id").GetInt32();
                bool isSpecial = a.TryGetProperty("special", out var s) && s.GetBoolean();
                Place(tokens, types, id, content, isSpecial ? Control : UserDefined, path);
                if (isSpecial) special[content] = id;
            }
        for (int i = 0; i < vocabSize; i++)
            if (tokens[i] is null)
            {
                // The embedding has rows the tokenizer never produces; llama.cpp's converter names them [PADn].
                tokens[i] = $"[PAD{i}]";
                types[i] = Unused;
            }

        var merges = new List<string>();
        foreach (var m in model.GetProperty("merges").EnumerateArray())
            merges.Add(m.ValueKind == JsonValueKind.String ? m.GetString()! : $"{m[0].GetString()} {m[1].GetString()}");

        writer.Add("tokenizer.ggml.model", GgufValue.Of("gpt2"));
        writer.Add("tokenizer.ggml.pre", GgufValue.Of(PreTokenizerName(root, path)));
        writer.Add("tokenizer.ggml.tokens", GgufValue.Strings(tokens!));
        writer.Add("tokenizer.ggml.token_type", GgufValue.Int32s(types));
        writer.Add("tokenizer.ggml.merges", GgufValue.Strings(merges.ToArray()));

        var cfg = ReadTokenizerConfig(modelDir);
        int? bos = Lookup(special, tokens, cfg.Bos) ?? configBos;
        int? eos = Lookup(special, tokens, cfg.Eos) ?? (configEos.Count > 0 ? configEos[0] : null);
        int? pad = Lookup(special, tokens, cfg.Pad);
        if (bos is { } b) writer.Add("tokenizer.ggml.bos_token_id", GgufValue.Of((uint)b));
        if (eos is { } e) writer.Add("tokenizer.ggml.eos_token_id", GgufValue.Of((uint)e));
        if (pad is { } p) writer.Add("tokenizer.ggml.padding_token_id", GgufValue.Of((uint)p));
        writer.Add("tokenizer.ggml.add_bos_token", GgufValue.Of(cfg.AddBos ?? bos is not null));
        writer.Add("tokenizer.ggml.add_eos_token", GgufValue.Of(false));
        writer.Add("tokenizer.huggingface.json", GgufValue.Of(json));
    }

    private static JsonDocument Parse(string json, string path)
    {
        try { return JsonDocument.Parse(json); }
        catch (JsonException e) { throw new InvalidFileException(path, "invalid JSON: " + e.Message, inner: e); }
    }

    private static void Place(string?[] tokens, int[] types, int id, string token, int type, string path)
    {
        if (id < 0 || id >= tokens.Length)
            throw new InvalidFileException(path, $"token '{token}' has id {id}, outside the model's {tokens.Length}-row embedding");
        tokens[id] = token;
        types[id] = type;
    }

    /// <summary>
    /// The llama.cpp pre-tokenizer name whose regex equals this tokenizer.json's split: a bare ByteLevel
    /// (use_regex) is GPT-2's regex ("gpt-2"); a Split with Llama-3's or Qwen2's regex maps to "llama-bpe" / "qwen2".
    /// Anything else is refused rather than written with a name that would tokenize differently.
    /// </summary>
    internal static string PreTokenizerName(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            throw new InvalidFileException(path, "no pre_tokenizer: cannot choose a llama.cpp tokenizer.ggml.pre");
        string type = pre.GetProperty("type").GetString() ?? "";
        if (type == "ByteLevel" && (!pre.TryGetProperty("use_regex", out var ur) || ur.GetBoolean()))
            return Gpt2Pre;
        if (type == "Sequence")
        {
            foreach (var p in pre.GetProperty("pretokenizers").EnumerateArray())
                if (p.GetProperty("type").GetString() == "Split" && p.TryGetProperty("pattern", out var pat)
                    && pat.TryGetProperty("Regex", out var rx))
                {
                    string regex = rx.GetString() ?? "";
                    if (regex == Llama3Regex) return "llama-bpe";
                    if (regex == Qwen2Regex) return "qwen2";
                    throw new InvalidFileException(path, $"pre_tokenizer split regex '{regex}' has no known llama.cpp pre-tokenizer name");
                }
        }
        throw new InvalidFileException(path, $"pre_tokenizer '{type}' has no known llama.cpp pre-tokenizer name (supported: ByteLevel, Llama-3 and Qwen2 splits)");
    }

    private sealed record TokenizerConfigNames(string? Bos, string? Eos, string? Pad, bool? AddBos);

    private static TokenizerConfigNames ReadTokenizerConfig(string modelDir)
    {
        string path = Path.Combine(modelDir, "tokenizer_config.json");
        if (!File.Exists(path)) return new(null, null, null, null);
        using var doc = Parse(File.ReadAllText(path), path);
        string? Name(string key) => doc.RootElement.TryGetProperty(key, out var v)
            ? v.ValueKind == JsonValueKind.String ? v.GetString()
            : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null
            : null;
        bool? addBos = doc.RootElement.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? ab.GetBoolean() : null;
        return new(Name("bos_token"), Name("eos_token"), Name("pad_token"), addBos);
    }

    private static int? Lookup(Dictionary<string, int> special, string?[] tokens, string? name)
    {
        if (name is null) return null;
        if (special.TryGetValue(name, out int id)) return id;
        int i = Array.IndexOf(tokens, name);
        return i >= 0 ? i : null;
    }
}
