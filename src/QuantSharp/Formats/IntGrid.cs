using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// Uniform integer grids. Symmetric b-bit: scale = 2·absmax/(2^b − 1) (FP-Quant's rule; the grid is [−2^(b−1),
/// 2^(b−1) − 1]). Asymmetric: the range is widened to include 0 (so the zero point is an integer code in [0, 2^b − 1]
/// and packs into b bits), scale = (max − min)/(2^b − 1), zero = round(−min/scale). Intel Neural Compressor's RTN uses
/// the same asymmetric rule; its symmetric rules are <see cref="IncSymmetricScale"/> and <see cref="FullRangeScale"/>.
/// </summary>
public static class IntGrid
{
    /// <summary>Asymmetric grids go down to 1 bit (codes {0, 1}), as INC allows.</summary>
    public const int MinBits = 1;

    /// <summary>A symmetric grid needs a negative and a positive code besides zero.</summary>
    public const int MinSymmetricBits = 2;
    public const int MaxBits = 8;

    /// <summary>Smallest and largest integer code.</summary>
    public static (int Min, int Max) Range(int bits, bool symmetric) =>
        symmetric ? (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) : (0, (1 << bits) - 1);

    /// <summary>Symmetric scale from |max|.</summary>
    public static Tensor SymmetricScale(Tensor absMax, int bits)
    {
        using var scope = NewDisposeScope();
        return absMax.to(ScalarType.Float32).mul(2f).div_((float)((1 << bits) - 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// INC's symmetric scale absmax/(2^(b−1) − 1): the grid is used as [−(2^(b−1) − 1), 2^(b−1) − 1] (its double
    /// quantization of scales uses this rule). A zero absmax gives 1/(2^(b−1) − 1), as INC sets absmax 1 there.
    /// </summary>
    public static Tensor IncSymmetricScale(Tensor absMax, int bits)
    {
        using var scope = NewDisposeScope();
        Tensor a = absMax.to(ScalarType.Float32);
        a = torch.where(a.eq(0), torch.ones_like(a), a);
        return a.div((float)((1 << (bits - 1)) - 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// INC's use_full_range: scale = max(|min|, |max|)/2^(b−1), negated where |max| &gt; |min|, so the largest-magnitude
    /// value maps exactly onto the extra negative code −2^(b−1) whichever its sign.
    /// </summary>
    public static Tensor FullRangeScale(Tensor min, Tensor max, int bits)
    {
        using var scope = NewDisposeScope();
        Tensor lo = min.to(ScalarType.Float32).abs(), hi = max.to(ScalarType.Float32).abs();
        Tensor scale = torch.maximum(lo, hi).div_((float)(1 << (bits - 1)));
        return torch.where(hi.gt(lo), scale.neg(), scale).MoveToOuterDisposeScope();
    }

    /// <summary>Asymmetric scale of the zero-including range [min(lo,0), max(hi,0)]; a zero range gets scale 1.</summary>
    public static Tensor AsymmetricScale(Tensor min, Tensor max, int bits)
    {
        using var scope = NewDisposeScope();
        Tensor lo = min.to(ScalarType.Float32).clamp_max(0f), hi = max.to(ScalarType.Float32).clamp_min(0f);
        Tensor scale = hi.sub(lo).div_((float)((1 << bits) - 1));
        return torch.where(scale.eq(0), torch.ones_like(scale), scale).MoveToOuterDisposeScope();
    }

    /// <summary>Zero point round(−min(lo,0)/scale), clamped to [0, 2^b − 1], as float32.</summary>
    public static Tensor AsymmetricZero(Tensor min, Tensor scale, int bits)
    {
        using var scope = NewDisposeScope();
        Tensor lo = min.to(ScalarType.Float32).clamp_max(0f);
        return lo.neg().div_(scale).round_().clamp_(0, (1 << bits) - 1).MoveToOuterDisposeScope();
    }

    /// <summary>Integer codes (as float32): round(x/scale + zero) clamped to the grid.</summary>
    public static Tensor Quantize(Tensor x, Tensor scale, Tensor? zero, int bits, bool symmetric)
    {
        using var scope = NewDisposeScope();
        var (qMin, qMax) = Range(bits, symmetric);
        Tensor q = x.to(ScalarType.Float32).div(scale);
        if (zero is not null) q = q.add_(zero);
        return q.round_().clamp_(qMin, qMax).MoveToOuterDisposeScope();
    }

    /// <summary>Values of integer codes: (q − zero)·scale.</summary>
    public static Tensor Dequantize(Tensor q, Tensor scale, Tensor? zero)
    {
        using var scope = NewDisposeScope();
        Tensor v = q.to(ScalarType.Float32);
        if (zero is not null) v = v.sub(zero);
        return v.mul(scale).MoveToOuterDisposeScope();
    }
}
