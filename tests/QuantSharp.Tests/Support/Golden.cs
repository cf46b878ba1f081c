using System.Text.Json;
using QuantSharp.IO;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Support;

/// <summary>Golden values that transformers computed for the fixture models (reference.json, reference_logits).</summary>
public static class Golden
{
    public static double Reference(string modelDir, string key)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(modelDir, "reference.json")));
        return doc.RootElement.GetProperty(key).GetDouble();
    }

    public static (Tensor InputIds, Tensor Logits) ReferenceLogits(string modelDir)
    {
        using var f = SafetensorsFile.Open(Path.Combine(modelDir, "reference_logits.safetensors"));
        return (f.Read("input_ids"), f.Read("logits_fp32"));
    }

    private static int[]? _evalTokens;

    /// <summary>eval_a.txt tokenized by Hugging Face tokenizers (525,770 ids).</summary>
    public static int[] EvalTokens()
    {
        if (_evalTokens is not null) return _evalTokens;
        using var f = SafetensorsFile.Open(Fixtures.EvalTokens);
        using var t = f.Read("input_ids");
        _evalTokens = t.data<int>().ToArray();
        return _evalTokens;
    }
}
