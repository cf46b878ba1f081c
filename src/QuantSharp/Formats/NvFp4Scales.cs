using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// NVFP4: groups of 16 E2M1 elements sharing one E4M3 scale, plus one float32 global scale per tensor that stretches
/// the tensor's largest group scale onto E4M3's top (448·6 / max|W|). Effective scale = e4m3(s·gs) / gs.
/// </summary>
public static class NvFp4Scales
{
    public const int GroupSize = 16;

    /// <summary>448 · 6: the global scale times max|W| (the largest scale times the largest element).</summary>
    public const float GlobalScaleNumerator = 448f * 6f;

    /// <summary>
    /// Global scale of a tensor from its max |value| (a scalar or [1] tensor): 448·6 · (1/absmax), in FP-Quant's
    /// operation order (reciprocal, then multiply). An all-zero tensor gets 1 (FP-Quant raises there; any scale
    /// reproduces zeros).
    /// </summary>
    public static Tensor GlobalScaleFromAbsMax(Tensor absMax)
    {
        using var scope = NewDisposeScope();
        Tensor a = absMax.to(ScalarType.Float32).reshape(1);
        Tensor gs = a.reciprocal().mul_(GlobalScaleNumerator);
        return torch.where(a.eq(0), torch.ones_like(gs), gs).MoveToOuterDisposeScope();
    }

    /// <summary>The global scale of a whole tensor.</summary>
    public static Tensor GlobalScaleOf(Tensor x)
    {
        using var scope = NewDisposeScope();
        return GlobalScaleFromAbsMax(x.abs().max()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Effective float32 group scales and their E4M3 bytes from unrounded FP4 scales (absmax/6 or an MSE-shrunk one):
    /// clamp(s·gs, ±448) rounded to E4M3, times 1/gs (FP-Quant multiplies by the reciprocal). A group whose scale
    /// rounds to zero gets effective scale 1 (its elements all quantize to 0) and byte 0x00.
    /// </summary>
    public static (Tensor Effective, Tensor Bytes) FromRawScale(Tensor rawScale, Tensor globalScale)
    {
        using var scope = NewDisposeScope();
        MiniFloatFormat e4m3 = MiniFloatFormat.E4M3;
        Tensor gs = globalScale.to(ScalarType.Float32).to(rawScale.device);
        Tensor stretched = rawScale.to(ScalarType.Float32).mul(gs).clamp(-e4m3.MaxFinite, e4m3.MaxFinite);
        Tensor rounded = e4m3.Round(stretched);
        Tensor bytes = e4m3.EncodeRounded(rounded);
        Tensor effective = rounded.mul(gs.reciprocal());
        effective = torch.where(effective.eq(0), torch.ones_like(effective), effective);
        return (effective.MoveToOuterDisposeScope(), bytes.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Effective float32 scales from stored E4M3 bytes and the global scale (loading a packed checkpoint): the same
    /// decode(byte)·(1/gs) as <see cref="FromRawScale"/>, with byte 0 mapped to 1 likewise, so reloaded weights equal
    /// the in-memory ones bit for bit.
    /// </summary>
    public static Tensor EffectiveFromBytes(Tensor bytes, Tensor globalScale)
    {
        using var scope = NewDisposeScope();
        Tensor gs = globalScale.to(ScalarType.Float32).to(bytes.device).reshape(1);
        Tensor effective = MiniFloatFormat.E4M3.Decode(bytes).mul(gs.reciprocal());
        return torch.where(effective.eq(0), torch.ones_like(effective), effective).MoveToOuterDisposeScope();
    }
}
