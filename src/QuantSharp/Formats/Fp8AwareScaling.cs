using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// The per-tensor FP8 scale of FP8-aware INT quantization (Intel Neural Compressor's DPQ, <c>fp8_aware</c> GPTQ). The
/// target hardware dequantizes b-bit integers into FP8 and multiplies in FP8, so every dequantized weight must be an
/// FP8 value: the weight is first brought into FP8 range by a power-of-two scale s8, integer groups are quantized in
/// that range, and each dequantized value is rounded to E4M3 and kept inside the protective range R = F − F/maxq, which
/// leaves one integer step of headroom below the FP8 maximum F so a dequantized code can never overflow.
/// </summary>
public static class Fp8AwareScaling
{
    /// <summary>Divisor of the smallest allowed s8, 1/(F·512) (INC takes the constant from vLLM).</summary>
    public const float MinScaleDivisor = 512f;

    /// <summary>R = F − F/(2^bits − 1) for the variant's FP8 maximum F.</summary>
    public static float ProtectiveRange(E4M3Variant variant, int bits)
    {
        float f = MiniFloatFormat.E4M3Of(variant).MaxFinite;
        return f - f / ((1 << bits) - 1);
    }

    /// <summary>The smallest s8: 1/(F·512).</summary>
    public static float MinScale(E4M3Variant variant) => 1f / (MiniFloatFormat.E4M3Of(variant).MaxFinite * MinScaleDivisor);

    /// <summary>
    /// s8 = 2^ceil(log2(max(max|W| / R, 1/(F·512)))) as float32 [1]; exact (no log2/exp2 kernels: see <see cref="Pow2"/>).
    /// </summary>
    public static Tensor TensorScale(Tensor w, E4M3Variant variant, int bits)
    {
        using var scope = NewDisposeScope();
        Tensor ratio = w.detach().to(ScalarType.Float32).abs().max().div(ProtectiveRange(variant, bits)).clamp_min(MinScale(variant)).reshape(1);
        return Pow2Ceil(ratio).MoveToOuterDisposeScope();
    }

    /// <summary>2^ceil(log2 y) for positive float32 y, exactly (the "pow2" scaling method of INC's FP8 scales).</summary>
    public static Tensor Pow2Ceil(Tensor y)
    {
        using var scope = NewDisposeScope();
        Tensor floor = Pow2.FloorLog2(y);
        // ceil(log2 y) = floor(log2 y) unless y is not a power of two.
        Tensor notPower = Pow2.Exact(floor).ne(y).to(ScalarType.Int64);
        return Pow2.Exact(floor.add(notPower)).MoveToOuterDisposeScope();
    }

    /// <summary>The FP8 value of each element of x (already divided by s8): E4M3(clamp(x, −R, R)).</summary>
    public static Tensor ToFp8(Tensor x, E4M3Variant variant, int bits)
    {
        using var scope = NewDisposeScope();
        float r = ProtectiveRange(variant, bits);
        return MiniFloatFormat.E4M3Of(variant).Round(x.to(ScalarType.Float32).clamp(-r, r)).MoveToOuterDisposeScope();
    }
}
