using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>MXFP4: groups of 32 E2M1 elements sharing one E8M0 scale.</summary>
public static class MxFp4Scales
{
    public const int GroupSize = 32;

    /// <summary>
    /// The per-tensor global scale that turns the stored E8M0 power of two into the effective scale
    /// (effective = E8M0 / global): 3 for <see cref="MxScaleRule.FpQuant"/> (FP-Quant exports weight_global_scale = 3),
    /// 1 for <see cref="MxScaleRule.Ocp"/>.
    /// </summary>
    public static float GlobalScaleOf(MxScaleRule rule) => rule switch
    {
        MxScaleRule.FpQuant => 3f,
        MxScaleRule.Ocp => 1f,
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, null),
    };

    /// <summary>
    /// Effective float32 scales and their E8M0 bytes from the unrounded FP4 scales <paramref name="rawScale"/>
    /// (= absmax/6, or a shrunk one from the MSE search). As in FP-Quant, the exponent is taken from 6·rawScale with the
    /// argument floored at 2^-126 (FP32's smallest normal), so an all-zero group gets exponent -126.
    /// </summary>
    public static (Tensor Effective, Tensor Bytes) FromRawScale(Tensor rawScale, MxScaleRule rule)
    {
        using var scope = NewDisposeScope();
        Tensor groupMax = rawScale.to(ScalarType.Float32).mul(Fp4.MaxMagnitude).clamp_min(MathF.ScaleB(1f, -126));
        Tensor exponent = Pow2.FloorLog2(groupMax);
        if (rule == MxScaleRule.Ocp) exponent = exponent.sub_(Fp4.MaxExponent);
        exponent = exponent.clamp(E8M0Format.MinExponent, E8M0Format.MaxExponent);
        Tensor bytes = E8M0Format.Encode(exponent);
        // FP-Quant computes 2^(e−2) / 0.75; that is the same real number as 2^e / 3, rounded once, so identical in fp32.
        Tensor effective = Pow2.Exact(exponent).div_(GlobalScaleOf(rule));
        return (effective.MoveToOuterDisposeScope(), bytes.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Effective float32 scales from stored E8M0 bytes and the per-tensor global scale (3 for the FP-Quant rule, 1 for
    /// OCP): 2^e / global, the same value <see cref="FromRawScale"/> computes.
    /// </summary>
    public static Tensor EffectiveFromBytes(Tensor bytes, float globalScale)
    {
        using var scope = NewDisposeScope();
        return E8M0Format.Decode(bytes).div_(globalScale).MoveToOuterDisposeScope();
    }
}
