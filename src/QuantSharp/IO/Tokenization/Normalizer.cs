using System.Text;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// The few tokenizers normalizers that byte-level BPE tokenizers use (Qwen2: NFC). Applied to text between added
/// tokens, before pre-tokenization. Normalizers that shift characters around (Replace, Prepend, strip accents) belong
/// to SentencePiece-style tokenizers, which this class does not aim at; the loader rejects them by name.
/// </summary>
internal sealed class Normalizer
{
    private readonly IReadOnlyList<Func<string, string>> _steps;

    private Normalizer(IReadOnlyList<Func<string, string>> steps) => _steps = steps;

    public string Apply(string text)
    {
        foreach (var step in _steps) text = step(text);
        return text;
    }

    /// <summary>A single step by tokenizers' type name; null when the type is not supported.</summary>
    public static Func<string, string>? Step(string type) => type switch
    {
        "NFC" => static s => s.Normalize(NormalizationForm.FormC),
        "NFD" => static s => s.Normalize(NormalizationForm.FormD),
        "NFKC" => static s => s.Normalize(NormalizationForm.FormKC),
        "NFKD" => static s => s.Normalize(NormalizationForm.FormKD),
        "Lowercase" => static s => s.ToLowerInvariant(),
        _ => null,
    };

    public static Normalizer Of(IReadOnlyList<Func<string, string>> steps) => new(steps);
}
