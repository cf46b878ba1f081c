namespace QuantSharp.IO.Tokenization;

/// <summary>
/// One stage of tokenizers' pre-tokenization: turns each piece of text into smaller pieces (and, for ByteLevel,
/// respells them in the byte alphabet). The BPE model then encodes every final piece on its own.
/// </summary>
internal abstract class PreTokenizer
{
    /// <summary>Appends the pieces <paramref name="piece"/> becomes to <paramref name="output"/>.</summary>
    public abstract void Split(string piece, List<string> output);

    /// <summary>True when this stage spells its output in the byte-level alphabet (so decoding must undo it).</summary>
    public virtual bool IsByteLevel => false;
}

/// <summary>Stages applied one after another, each to every piece the previous one produced.</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> stages) : PreTokenizer
{
    public override bool IsByteLevel => stages.Any(s => s.IsByteLevel);

    public override void Split(string piece, List<string> output)
    {
        if (stages.Count == 0) { output.Add(piece); return; }
        var current = new List<string> { piece };
        var next = new List<string>();
        for (int k = 0; k < stages.Count; k++)
        {
            var target = k == stages.Count - 1 ? output : next;
            foreach (string p in current) stages[k].Split(p, target);
            if (target == output) break;
            (current, next) = (next, current);
            next.Clear();
        }
    }
}

/// <summary>tokenizers' Split: cut by a regex or literal, keeping matches as <see cref="SplitBehavior"/> says.</summary>
internal sealed class SplitPreTokenizer(CodePointRegex pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    // Encode is thread-safe, so the scratch list is per thread rather than per instance.
    [ThreadStatic] private static List<(int Start, int End)>? t_matches;

    public override void Split(string piece, List<string> output)
    {
        var matches = t_matches ??= new List<(int, int)>();
        matches.Clear();
        pattern.Matches(piece, matches);
        SplitBehaviors.Apply(piece, matches, behavior, invert, output);
        if (matches.Capacity > 1 << 16) t_matches = null; // do not pin a huge buffer after a long input
    }
}

/// <summary>
/// tokenizers' ByteLevel pre-tokenizer: optionally a leading space, optionally GPT-2's split regex, then every
/// piece UTF-8 encoded and spelled in <see cref="ByteLevelAlphabet"/>.
/// </summary>
internal sealed class ByteLevelPreTokenizer : PreTokenizer
{
    /// <summary>The split regex of GPT-2's encoder.py, used when use_regex is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Lazy<SplitPreTokenizer> Gpt2Split =
        new(() => new SplitPreTokenizer(CodePointRegex.FromOniguruma(Gpt2Pattern), SplitBehavior.Isolated, invert: false));

    private readonly bool _addPrefixSpace;
    private readonly bool _useRegex;

    public ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex)
    {
        _addPrefixSpace = addPrefixSpace;
        _useRegex = useRegex;
    }

    public override bool IsByteLevel => true;

    public override void Split(string piece, List<string> output)
    {
        if (_addPrefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
        if (!_useRegex)
        {
            output.Add(ByteLevelAlphabet.Encode(piece));
            return;
        }
        int first = output.Count;
        Gpt2Split.Value.Split(piece, output);
        for (int k = first; k < output.Count; k++) output[k] = ByteLevelAlphabet.Encode(output[k]);
    }
}
