using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Transforms;

/// <summary>
/// FP-Quant's "fast_food" block (after Le, Sarlós and Smola, "Fastfood", 2013), for right-multiplication x' = x·M:
/// <code>M = (1/σ)(1/√n)·S·H·G·Π·H·B</code>
/// with σ = 1/√2, H the ±1 Hadamard matrix of order n, B a diagonal of random ±1, G a diagonal of standard normals,
/// Π a random permutation matrix (rows of I picked by a random permutation) and S a diagonal of Chi(n) samples
/// (norms of n-dimensional standard normal vectors) divided by ‖G‖.
/// <para>
/// FP-Quant divides each Chi sample by |G_ii| (the row norms of the diagonal matrix G), a slip in porting
/// scikit-learn-extra's Fastfood, where G is a vector and the row norm is ‖g‖₂ as in the paper. We use ‖g‖₂: the
/// per-entry version squares G's spread into the block's condition number, which costs fp32 accuracy when the
/// inverse-transpose is folded into weights.
/// </para>
/// Random numbers are drawn in FP-Quant's order (B, G, Chi, Π) and dtypes (float32 normals) from one seeded generator.
/// </summary>
internal static class FastFoodMatrices
{
    private static readonly double Sigma = 1.0 / Math.Sqrt(2.0);

    /// <summary>The forward block M and its inverse-transpose M⁻ᵀ (float64 CPU, caller's scope).</summary>
    public static (Tensor Forward, Tensor InverseTranspose) Build(int size, Generator generator)
    {
        using var scope = NewDisposeScope();
        Tensor binary = randint(0, 2, new long[] { size }, dtype: ScalarType.Int64, generator: generator)
            .to_type(ScalarType.Float64).mul(2).sub(1);
        Tensor gaussian = randn(new long[] { size }, dtype: ScalarType.Float32, generator: generator).to_type(ScalarType.Float64);
        Tensor chi = randn(new long[] { size, size }, dtype: ScalarType.Float32, generator: generator)
            .to_type(ScalarType.Float64).square().sum(dim: 1).sqrt();
        Tensor permutation = randperm(size, generator: generator);

        Tensor scaling = chi.div(gaussian.square().sum().sqrt());
        // With the orthonormal Hn = H/√n the constant becomes (1/σ)(1/√n)·n = √n/σ.
        double constant = Math.Sqrt(size) / Sigma;
        Tensor hadamard = HadamardMatrices.Orthonormal(size);
        Tensor permutationMatrix = eye(size, dtype: ScalarType.Float64).index_select(0, permutation);

        Tensor forward = Product(scaling, hadamard, gaussian, permutationMatrix, binary).mul(constant);
        // M⁻ᵀ = (1/c)·(S·Hn·G·Π·Hn·B)⁻ᵀ = (1/c)·S⁻¹·Hn·G⁻¹·Π·Hn·B, because Hn⁻ᵀ = Hn, Π⁻ᵀ = Π and diagonals are
        // symmetric; writing it out avoids a numerical inverse.
        Tensor inverseTranspose = Product(scaling.reciprocal(), hadamard, gaussian.reciprocal(), permutationMatrix, binary)
            .div(constant);
        return (forward.MoveToOuterDisposeScope(), inverseTranspose.MoveToOuterDisposeScope());
    }

    /// <summary>diag(left)·Hn·diag(middle)·Π·Hn·diag(right), with diagonal products as broadcast scalings.</summary>
    private static Tensor Product(Tensor left, Tensor hadamard, Tensor middle, Tensor permutation, Tensor right)
    {
        using var scope = NewDisposeScope();
        Tensor leftHalf = hadamard.mul(left.unsqueeze(1)).mul(middle.unsqueeze(0));
        Tensor rightHalf = permutation.matmul(hadamard.mul(right.unsqueeze(0)));
        return leftHalf.matmul(rightHalf).MoveToOuterDisposeScope();
    }
}
