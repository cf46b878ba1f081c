namespace QuantSharp.IO.Tokenization;

/// <summary>
/// A Hugging Face tokenizer.json byte-level BPE tokenizer (GPT-2, Llama-3, Qwen2/3 and QuantSharp's own models),
/// reproducing the ids of the tokenizers library exactly. Pipeline, as in tokenizers: added tokens are cut out of the
/// text; the rest is normalized, pre-tokenized (split regex, then bytes spelled in GPT-2's alphabet) and each piece
/// BPE-merged; the post-processor's template adds BOS/EOS on request. Instances are immutable and thread-safe.
/// </summary>
public sealed class BpeTokenizer
{
    // Well-known names, used only when tokenizer_config.json does not say (a bare tokenizer.json does not name its
    // end-of-sequence or padding token, and callers like generation need one).
    private static readonly string[] EosNames = ["<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>"];
    private static readonly string[] PadNames = ["<|pad|>", "<pad>", "[PAD]"];

    private readonly BpeModel _model;
    private readonly string?[] _idToToken;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly HashSet<int> _specialIds;
    private readonly AddedTokenSplitter _rawAdded;        // added tokens matched on the input as given
    private readonly AddedTokenSplitter _normalizedAdded; // added tokens matched after normalization
    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly PostProcessor _postProcessor;
    private readonly TokenDecoder _decoder;

    private BpeTokenizer(TokenizerParts parts, string path, TokenizerConfig? config, string? configPath)
    {
        _model = parts.Model;
        _idToToken = parts.IdToToken;
        _tokenToId = parts.TokenToId;
        AddedTokens = parts.AddedTokens;
        _specialIds = parts.AddedTokens.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        _rawAdded = new AddedTokenSplitter(parts.AddedTokens.Where(t => !t.Normalized));
        _normalizedAdded = new AddedTokenSplitter(parts.AddedTokens.Where(t => t.Normalized));
        _normalizer = parts.Normalizer;
        _preTokenizer = parts.PreTokenizer;
        _postProcessor = parts.PostProcessor;
        _decoder = parts.Decoder;
        SourcePath = path;

        int? ConfigId(string? name, string key) => name is null ? null
            : TokenToId(name) ?? throw new InvalidFileException(configPath!, $"{key} '{name}' is not a token of {path}");

        BosTokenId = config is { HasBos: true } ? ConfigId(config.Bos, "bos_token")
            : _postProcessor.Prefix.Length > 0 ? _postProcessor.Prefix[0] : null;
        EosTokenId = config is { HasEos: true } ? ConfigId(config.Eos, "eos_token")
            : _postProcessor.Suffix.Length > 0 ? _postProcessor.Suffix[^1] : SpecialNamed(EosNames);
        PadTokenId = config is { HasPad: true } ? ConfigId(config.Pad, "pad_token") : SpecialNamed(PadNames);
    }

    /// <summary>Loads a tokenizer.json. BOS comes from its post-processor; EOS/PAD from well-known token names.</summary>
    public static BpeTokenizer FromFile(string tokenizerJsonPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
        return new BpeTokenizer(TokenizerJsonLoader.Load(tokenizerJsonPath), tokenizerJsonPath, null, null);
    }

    /// <summary>
    /// Loads <c>tokenizer.json</c> from a model folder, taking the BOS/EOS/PAD token names from
    /// <c>tokenizer_config.json</c> when that file exists.
    /// </summary>
    public static BpeTokenizer FromDirectory(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        string path = Path.Combine(modelDir, "tokenizer.json");
        string configPath = Path.Combine(modelDir, "tokenizer_config.json");
        TokenizerParts parts = TokenizerJsonLoader.Load(path);
        TokenizerConfig? config = File.Exists(configPath) ? TokenizerConfig.Load(configPath) : null;
        return new BpeTokenizer(parts, path, config, configPath);
    }

    /// <summary>The tokenizer.json this tokenizer was read from.</summary>
    public string SourcePath { get; }

    /// <summary>One more than the highest id of the vocabulary and added tokens: the rows an embedding needs.</summary>
    public int VocabSize => _idToToken.Length;

    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }

    /// <summary>The tokenizer.json's added tokens (special tokens and user-added words).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>
    /// Encodes <paramref name="text"/>. Special tokens written in the text (e.g. "&lt;|end_of_text|&gt;") become their
    /// ids. With <paramref name="addSpecialTokens"/>, the post-processor's template is applied (BOS in front for
    /// Llama-3-style tokenizers).
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens = false) => Encode(text, addSpecialTokens, parseSpecialTokens: true);

    /// <summary>
    /// Encodes <paramref name="text"/>; with <paramref name="parseSpecialTokens"/> false, special tokens written in the
    /// text are encoded as ordinary text (tokenizers' <c>split_special_tokens</c>), which is what untrusted input wants.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens, bool parseSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 8);
        if (addSpecialTokens) ids.AddRange(_postProcessor.Prefix);

        var segments = new List<(string Text, int Id)>();
        var inner = new List<(string Text, int Id)>();
        var pieces = new List<string>();
        _rawAdded.Split(text, parseSpecialTokens, segments);
        foreach ((string segment, int segmentId) in segments)
        {
            if (segmentId >= 0) { ids.Add(segmentId); continue; }
            inner.Clear();
            _normalizedAdded.Split(_normalizer?.Apply(segment) ?? segment, parseSpecialTokens, inner);
            foreach ((string part, int partId) in inner)
            {
                if (partId >= 0) { ids.Add(partId); continue; }
                pieces.Clear();
                if (_preTokenizer is null) pieces.Add(part);
                else _preTokenizer.Split(part, pieces);
                foreach (string piece in pieces) _model.Encode(piece, ids);
            }
        }

        if (addSpecialTokens) ids.AddRange(_postProcessor.Suffix);
        return ids.ToArray();
    }

    /// <summary>
    /// Decodes ids to text: byte-level tokens are turned back into bytes and the whole byte string UTF-8 decoded
    /// (an incomplete character becomes U+FFFD). Ids that name no token are skipped, as tokenizers does (a model's
    /// embedding is often padded beyond the vocabulary).
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            if (IdToToken(id) is not string token) continue;
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            tokens.Add(token);
        }
        return _decoder.Decode(tokens);
    }

    /// <summary>The token string of an id (byte-level spelling, e.g. "Ġthe"), or null when the id names none.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>The id of a token string (byte-level spelling, or an added token's content), or null.</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _tokenToId.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>Whether <paramref name="id"/> is an added token marked special (skipped by Decode on request).</summary>
    public bool IsSpecialToken(int id) => _specialIds.Contains(id);

    private int? SpecialNamed(string[] names)
    {
        foreach (string name in names)
            if (_tokenToId.TryGetValue(name, out int id) && _specialIds.Contains(id)) return id;
        return null;
    }
}
