using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Transforms;

/// <summary>
/// Orthonormal type-II DCT and DST blocks of any size, laid out for right-multiplication (x' = x·M): column k of M
/// is the k-th basis vector, so x·M yields the transform coefficients. This is the matrix FP-Quant obtains as
/// scipy's <c>dct(eye(n), type=2, norm='ortho')</c> (and likewise <c>dst</c>). float64 CPU, caller's scope.
/// </summary>
internal static class TrigonometricMatrices
{
    /// <summary>M[i, k] = α_k·cos(π(2i+1)k / 2n), α_0 = √(1/n), α_k = √(2/n) otherwise.</summary>
    public static Tensor DctII(int size)
    {
        using var scope = NewDisposeScope();
        Tensor angle = PhaseGrid(size, frequencyOffset: 0);
        Tensor scale = full(size, Math.Sqrt(2.0 / size), dtype: ScalarType.Float64);
        scale[0] = Math.Sqrt(1.0 / size);
        return angle.cos().mul(scale.unsqueeze(0)).MoveToOuterDisposeScope();
    }

    /// <summary>M[i, k] = β_k·sin(π(2i+1)(k+1) / 2n), β_k = √(2/n) except β_{n−1} = √(1/n).</summary>
    public static Tensor DstII(int size)
    {
        using var scope = NewDisposeScope();
        Tensor angle = PhaseGrid(size, frequencyOffset: 1);
        Tensor scale = full(size, Math.Sqrt(2.0 / size), dtype: ScalarType.Float64);
        scale[size - 1] = Math.Sqrt(1.0 / size);
        return angle.sin().mul(scale.unsqueeze(0)).MoveToOuterDisposeScope();
    }

    /// <summary>[i, k] = π(2i+1)(k + offset) / 2n for sample index i (rows) and frequency k (columns).</summary>
    private static Tensor PhaseGrid(int size, int frequencyOffset)
    {
        using var scope = NewDisposeScope();
        Tensor sample = arange(size, dtype: ScalarType.Float64).mul(2).add(1).unsqueeze(1);
        Tensor frequency = arange(size, dtype: ScalarType.Float64).add(frequencyOffset).unsqueeze(0);
        return sample.mul(frequency).mul(Math.PI / (2.0 * size)).MoveToOuterDisposeScope();
    }
}
