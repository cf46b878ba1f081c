namespace QuantSharp.IO.Tokenization;

/// <summary>
/// What tokenizers' post-processor adds around a single sequence when special tokens are requested, reduced to the
/// ids before and after it. TemplateProcessing, RobertaProcessing/BertProcessing and Sequence all come down to that
/// for one sequence; ByteLevel only adjusts offsets, which this tokenizer does not report.
/// </summary>
internal sealed record PostProcessor(int[] Prefix, int[] Suffix)
{
    public static PostProcessor None { get; } = new([], []);

    /// <summary>The processor that applies <paramref name="first"/> and then <paramref name="then"/>.</summary>
    public static PostProcessor Chain(PostProcessor first, PostProcessor then) =>
        new([.. then.Prefix, .. first.Prefix], [.. first.Suffix, .. then.Suffix]);
}
