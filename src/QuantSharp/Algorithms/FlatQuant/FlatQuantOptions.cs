using QuantSharp.Algorithms.Gptq;
using QuantSharp.Models;
using QuantSharp.Quantization;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// A FlatQuant recipe. Defaults are the reference's W4A4KV4 recipe: 15 epochs over 128 × seq-len windows in batches
/// of 4, AdamW at lr 5e-3 (10× for the clipping logits), cosine decay to lr·1e-3, SmoothQuant-style add_diag init
/// with α = 0.3, LWC and LAC on, per-channel symmetric int4 weights, per-token symmetric int4 activations, 4-bit
/// asymmetric K/V in groups of 128 along each head.
/// </summary>
public sealed record FlatQuantOptions
{
    public int WBits { get; init; } = 4;
    public int ABits { get; init; } = 4;
    public bool ActAsymmetric { get; init; }
    public KvCacheSpec? KvCache { get; init; } = new(4, 4, 128, true);
    public int Epochs { get; init; } = 15;
    public double LearningRate { get; init; } = 5e-3;
    public double WeightDecay { get; init; } = 0.01;
    public bool Lwc { get; init; } = true;
    public bool Lac { get; init; } = true;
    public bool AddDiag { get; init; } = true;
    public double DiagAlpha { get; init; } = 0.3;
    public int BatchSize { get; init; } = 4;
    public int NumSequences { get; init; } = 128;
    public int SeqLen { get; init; } = 512;
    public int Seed { get; init; } = 42;
    /// <summary>How each transform matrix is trained: U·diag(σ)·Vᵀ with Cayley-orthogonal U, V (the reference's default) or the matrix itself.</summary>
    public TransformParameterization Parameterization { get; init; } = TransformParameterization.Svd;
    /// <summary>GPTQ on the merged weights (after the transforms and clipping are folded) instead of RTN.</summary>
    public bool Gptq { get; init; }
    public GptqOptions GptqOptions { get; init; } = new();
    /// <summary>Folder where each layer's trained parameters are written as it finishes; an existing one is resumed.</summary>
    public string? ResumeDir { get; init; }
    /// <summary>
    /// Round the online transforms and clip ratios to fp16 before folding (the weight side uses the exact inverse of the
    /// rounded matrix), so what the int4 export stores in fp16 is exactly what the in-memory model runs.
    /// </summary>
    public bool HalfPrecisionOnline { get; init; } = true;

    public bool QuantizesWeights => WBits < 16;
    public bool QuantizesActivations => ABits < 16;

    public void Validate(ModelConfig model)
    {
        if (WBits != 16 && (WBits < Formats.IntGrid.MinBits || WBits > Formats.IntGrid.MaxBits))
            throw new QuantSharpException($"--w-bits {WBits}: FlatQuant quantizes weights to 2..8-bit integers (16 keeps them).");
        if (ABits != 16 && (ABits < Formats.IntGrid.MinBits || ABits > Formats.IntGrid.MaxBits))
            throw new QuantSharpException($"--a-bits {ABits}: FlatQuant quantizes activations to 2..8-bit integers (16 keeps them).");
        bool kv = KvCache is { } k && (k.QuantizesKeys || k.QuantizesValues);
        if (!QuantizesWeights && !QuantizesActivations)
            throw new QuantSharpException(kv
                ? "--k-bits/--v-bits need --w-bits or --a-bits below 16: FlatQuant learns its transforms for quantized weights/activations."
                : "nothing to do: --w-bits and --a-bits are both 16.");
        KvCache?.Validate(model.HeadDim);
        // The head-mixing transform acts on o_proj's input viewed as (heads × head_dim). Without an explicit head_dim the
        // width is split evenly over the heads, which only works when the heads divide hidden_size.
        if (model.Raw["head_dim"] is null && model.HiddenSize % model.NumHeads != 0)
            throw new QuantSharpException($"FlatQuant's head-mixing transform needs o_proj's input split into heads, but " +
                $"{model.NumHeads} heads do not divide hidden_size {model.HiddenSize} and config.json gives no head_dim.");
        if (model.NumHeads % model.NumKvHeads != 0)
            throw new QuantSharpException($"num_attention_heads {model.NumHeads} is not a multiple of num_key_value_heads {model.NumKvHeads}.");
        if (Epochs < 0) throw new QuantSharpException($"--epochs {Epochs}: must be 0 or more.");
        if (LearningRate <= 0) throw new QuantSharpException($"--lr {LearningRate}: must be positive.");
        if (BatchSize < 1) throw new QuantSharpException($"--calib-batch-size {BatchSize}: must be at least 1.");
        if (NumSequences < BatchSize)
            throw new QuantSharpException($"--num-sequences {NumSequences} is fewer than one batch of {BatchSize}.");
    }
}
