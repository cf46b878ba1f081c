using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// Exact powers of two and exact floor(log2 x) for float32 tensors. log2/exp2 kernels are not guaranteed exact (and
/// CUDA's fast paths flush subnormals), and an exponent that is off by one near a power of two would move a value to
/// another binade of a scale grid, so these go through frexp and a table lookup instead.
/// </summary>
public static class Pow2
{
    /// <summary>Smallest exponent with a float32 power of two (the smallest subnormal, 2^-149).</summary>
    public const int MinExponent = -149;

    /// <summary>Largest float32 power of two exponent.</summary>
    public const int MaxExponent = 127;

    /// <summary>floor(log2 |x|) as int64 for finite non-zero x; for x == 0 the result is -1 (callers clamp).</summary>
    public static Tensor FloorLog2(Tensor x)
    {
        using var scope = NewDisposeScope();
        // frexp: x = m·2^e with |m| in [0.5, 1), so floor(log2|x|) = e − 1, exactly, subnormals included.
        var (mantissa, exponent) = frexp(x.to(ScalarType.Float32));
        return exponent.to(ScalarType.Int64).sub_(1).MoveToOuterDisposeScope();
    }

    /// <summary>2^k as float32 for integer k (any integer dtype); k is clamped to [-149, 127].</summary>
    public static Tensor Exact(Tensor k)
    {
        using var scope = NewDisposeScope();
        Tensor table = DeviceConstants.Get("pow2", k.device, BuildTable);
        Tensor index = k.to(ScalarType.Int64).clamp(MinExponent, MaxExponent).sub_(MinExponent);
        return table.take(index).MoveToOuterDisposeScope();
    }

    private static float[] BuildTable()
    {
        var t = new float[MaxExponent - MinExponent + 1];
        for (int k = MinExponent; k <= MaxExponent; k++) t[k - MinExponent] = MathF.ScaleB(1f, k);
        return t;
    }
}
