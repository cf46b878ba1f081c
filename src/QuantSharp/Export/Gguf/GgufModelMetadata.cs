using QuantSharp.IO.Gguf;
using QuantSharp.Models;

namespace QuantSharp.Export.Gguf;

/// <summary>
/// The {arch}.* hyper-parameters llama.cpp reads for the llama, qwen2 and qwen3 architectures, from config.json.
/// Llama-3 rope scaling is not a key in llama.cpp: the converter writes a rope_freqs tensor of per-frequency divisors
/// (see <see cref="Llama3RopeFactors"/>); QuantSharp also keeps the four scaling parameters under quantsharp.rope.*
/// so it can rebuild the exact config when loading the file back.
/// </summary>
public static class GgufModelMetadata
{
    public const string RopeFreqsTensor = "rope_freqs.weight";

    public static string Architecture(ModelConfig c) => c.Family switch
    {
        // llama.cpp's converter writes Mistral (dense, no sliding window here) as the llama architecture.
        ModelFamily.Llama or ModelFamily.Mistral => "llama",
        ModelFamily.Qwen2 => "qwen2",
        ModelFamily.Qwen3 => "qwen3",
        _ => throw new QuantSharpException($"{c.SourcePath}: model family {c.Family} has no GGUF architecture mapping"),
    };

    /// <summary>Whether llama.cpp rotates adjacent pairs for this architecture (so q/k rows must be permuted).</summary>
    public static bool NeedsQkPermutation(string arch) => arch == "llama";

    public static void Add(GgufWriter w, ModelConfig c)
    {
        string a = Architecture(c);
        w.Add($"{a}.vocab_size", GgufValue.Of((uint)c.VocabSize));
        w.Add($"{a}.context_length", GgufValue.Of((uint)c.MaxPositionEmbeddings));
        w.Add($"{a}.embedding_length", GgufValue.Of((uint)c.HiddenSize));
        w.Add($"{a}.block_count", GgufValue.Of((uint)c.NumLayers));
        w.Add($"{a}.feed_forward_length", GgufValue.Of((uint)c.IntermediateSize));
        w.Add($"{a}.attention.head_count", GgufValue.Of((uint)c.NumHeads));
        w.Add($"{a}.attention.head_count_kv", GgufValue.Of((uint)c.NumKvHeads));
        w.Add($"{a}.attention.key_length", GgufValue.Of((uint)c.HeadDim));
        w.Add($"{a}.attention.value_length", GgufValue.Of((uint)c.HeadDim));
        w.Add($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of((float)c.RmsNormEps));
        w.Add($"{a}.rope.freq_base", GgufValue.Of((float)c.Rope.Theta));
        int rotary = c.Rope.RotaryDim > 0 ? c.Rope.RotaryDim : c.HeadDim;
        w.Add($"{a}.rope.dimension_count", GgufValue.Of((uint)rotary));
        switch (c.Rope.Type)
        {
            case RopeType.Linear:
                w.Add($"{a}.rope.scaling.type", GgufValue.Of("linear"));
                w.Add($"{a}.rope.scaling.factor", GgufValue.Of((float)c.Rope.Factor));
                break;
            case RopeType.Llama3:
                w.Add("quantsharp.rope.llama3.factor", GgufValue.Of((float)c.Rope.Factor));
                w.Add("quantsharp.rope.llama3.low_freq_factor", GgufValue.Of((float)c.Rope.LowFreqFactor));
                w.Add("quantsharp.rope.llama3.high_freq_factor", GgufValue.Of((float)c.Rope.HighFreqFactor));
                w.Add("quantsharp.rope.llama3.original_context_length", GgufValue.Of((uint)c.Rope.OriginalMaxPositionEmbeddings));
                break;
        }
    }

    /// <summary>
    /// Per-frequency divisors llama.cpp applies to the base rope frequencies (rope_freqs): the base inverse frequency
    /// over the Llama-3-scaled one, i.e. 1 for short wavelengths, factor for long ones, a blend in between.
    /// </summary>
    public static float[] Llama3RopeFactors(ModelConfig c)
    {
        var plain = (c.Rope with { Type = RopeType.Default }).InverseFrequencies(c.HeadDim);
        var scaled = c.Rope.InverseFrequencies(c.HeadDim);
        var factors = new float[plain.Length];
        for (int i = 0; i < factors.Length; i++) factors[i] = plain[i] / scaled[i];
        return factors;
    }
}
