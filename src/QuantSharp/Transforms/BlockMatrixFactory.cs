using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Transforms;

/// <summary>
/// Builds one [size, size] block of a transform in float64 on the CPU (caller's dispose scope): the forward block M
/// (activations: x' = x·M) and the backward block M⁻ᵀ (weights: W' = W·M⁻ᵀ). For orthogonal kinds M⁻ᵀ = M and the
/// same tensor is returned twice.
/// </summary>
internal static class BlockMatrixFactory
{
    public static (Tensor Forward, Tensor Backward) Build(TransformKind kind, int size, bool randomSigns, Generator generator)
    {
        if (kind == TransformKind.FastFood) return FastFoodMatrices.Build(size, generator);

        Tensor forward = kind switch
        {
            TransformKind.Identity => eye(size, dtype: ScalarType.Float64),
            TransformKind.Hadamard => randomSigns ? WithRandomSigns(HadamardMatrices.Orthonormal(size), generator)
                                                  : HadamardMatrices.Orthonormal(size),
            TransformKind.Dct => TrigonometricMatrices.DctII(size),
            TransformKind.Dst => TrigonometricMatrices.DstII(size),
            TransformKind.Gsr => HadamardMatrices.SequencyOrdered(size),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a defined transform kind"),
        };
        return (forward, forward);
    }

    /// <summary>
    /// diag(s)·H for random s ∈ {±1}: x' = (x ⊙ s)·H, i.e. flip input signs, then rotate. This is the row-signed
    /// matrix FP-Quant's inference library built before v0.3.2; still orthogonal, and the signs keep outlier
    /// channels from lining up with the fixed structure of H.
    /// </summary>
    private static Tensor WithRandomSigns(Tensor hadamard, Generator generator)
    {
        using var scope = NewDisposeScope();
        long size = hadamard.shape[0];
        Tensor signs = randint(0, 2, new long[] { size }, dtype: ScalarType.Int64, generator: generator)
            .to_type(ScalarType.Float64).mul(2).sub(1);
        return hadamard.mul(signs.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
