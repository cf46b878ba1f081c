using QuantSharp.Transforms;
using TorchSharp;
using static TorchSharp.torch;
using static QuantSharp.Tests.Transforms.TensorComparison;

namespace QuantSharp.Tests.Transforms;

public sealed class TrigonometricMatrixTests
{
    [Fact]
    public void Dct_ii_of_size_4_matches_the_closed_form()
    {
        // X_k = α_k Σ_i x_i cos(π(2i+1)k/8), α_0 = 1/2, α_k = 1/√2: the coefficients of x are x·M, so M[i, k] = α_k cos(…).
        using var scope = NewDisposeScope();
        double[,] m = ToArray(TrigonometricMatrices.DctII(4));
        for (int i = 0; i < 4; i++)
        {
            for (int k = 0; k < 4; k++)
            {
                double alpha = k == 0 ? 0.5 : Math.Sqrt(0.5);
                Assert.Equal(alpha * Math.Cos(Math.PI * (2 * i + 1) * k / 8), m[i, k], 14);
            }
        }
        // Spot values: the DC column is 1/2 everywhere; M[0, 1] = cos(π/8)/√2 ≈ 0.6532814824.
        Assert.Equal(0.5, m[3, 0], 15);
        Assert.Equal(0.6532814824381883, m[0, 1], 14);
    }

    [Fact]
    public void Dct_ii_turns_a_constant_into_its_dc_coefficient()
    {
        using var scope = NewDisposeScope();
        Tensor coefficients = ones(1, 4, dtype: ScalarType.Float64).matmul(TrigonometricMatrices.DctII(4));
        Assert.True(MaxAbsDifference(coefficients, tensor(new double[] { 2, 0, 0, 0 }).unsqueeze(0)) < 1e-14);
    }

    [Fact]
    public void Dst_ii_of_size_4_matches_the_closed_form()
    {
        using var scope = NewDisposeScope();
        double[,] m = ToArray(TrigonometricMatrices.DstII(4));
        for (int i = 0; i < 4; i++)
        {
            for (int k = 0; k < 4; k++)
            {
                double beta = k == 3 ? 0.5 : Math.Sqrt(0.5);
                Assert.Equal(beta * Math.Sin(Math.PI * (2 * i + 1) * (k + 1) / 8), m[i, k], 14);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(7)]
    [InlineData(36)]
    [InlineData(128)]
    public void Dct_and_dst_are_orthonormal_for_any_size(int size)
    {
        using var scope = NewDisposeScope();
        Assert.True(OrthogonalityError(TrigonometricMatrices.DctII(size)) < 1e-12);
        Assert.True(OrthogonalityError(TrigonometricMatrices.DstII(size)) < 1e-12);
    }
}
