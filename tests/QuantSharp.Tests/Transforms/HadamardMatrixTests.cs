using QuantSharp.Transforms;
using TorchSharp;
using static TorchSharp.torch;
using static QuantSharp.Tests.Transforms.TensorComparison;

namespace QuantSharp.Tests.Transforms;

public sealed class HadamardMatrixTests
{
    [Fact]
    public void Order_2_is_the_normalised_butterfly()
    {
        using var scope = NewDisposeScope();
        double r = 1 / Math.Sqrt(2);
        Assert.Equal(new[,] { { r, r }, { r, -r } }, ToArray(HadamardMatrices.Orthonormal(2)));
    }

    [Fact]
    public void Order_4_is_sylvester_in_natural_order()
    {
        using var scope = NewDisposeScope();
        double[,] expected =
        {
            { 1, 1, 1, 1 },
            { 1, -1, 1, -1 },
            { 1, 1, -1, -1 },
            { 1, -1, -1, 1 },
        };
        double[,] actual = ToArray(HadamardMatrices.Orthonormal(4));
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(expected[i, j] / 2, actual[i, j], 15);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(20)]
    [InlineData(24)]
    [InlineData(40)]
    [InlineData(48)]
    [InlineData(96)]
    [InlineData(160)]
    [InlineData(128)]
    public void Every_supported_order_has_entries_plus_minus_one_over_root_n_and_is_orthonormal(int order)
    {
        using var scope = NewDisposeScope();
        Tensor h = HadamardMatrices.Orthonormal(order);
        Assert.Equal(new long[] { order, order }, h.shape);
        Assert.True(MaxAbsDifference(h.abs(), full(order, order, 1 / Math.Sqrt(order), dtype: ScalarType.Float64)) < 1e-15);
        Assert.True(OrthogonalityError(h) < 1e-12, $"order {order}");
        Assert.True(OrthogonalityError(h.to_type(ScalarType.Float32)) < 1e-5, $"order {order} in fp32");
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(12, true)]
    [InlineData(20, true)]
    [InlineData(80, true)]
    [InlineData(3, false)]
    [InlineData(28, false)]
    [InlineData(36, false)]
    [InlineData(60, false)]
    [InlineData(0, false)]
    public void Supported_orders_are_powers_of_two_times_1_12_or_20(int order, bool supported)
    {
        Assert.Equal(supported, HadamardMatrices.IsSupportedOrder(order));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 2)]
    [InlineData(7, 4)]
    [InlineData(12, 12)]
    [InlineData(15, 12)]
    [InlineData(23, 20)]
    [InlineData(36, 32)]
    [InlineData(47, 40)]
    [InlineData(100, 96)]
    [InlineData(127, 96)]
    [InlineData(200, 192)]
    public void Largest_supported_order_at_most(int limit, int expected)
    {
        Assert.Equal(expected, HadamardMatrices.LargestSupportedOrderAtMost(limit));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(16)]
    [InlineData(128)]
    public void Gsr_columns_have_sequency_0_to_n_minus_1_in_order(int order)
    {
        using var scope = NewDisposeScope();
        Tensor gsr = HadamardMatrices.SequencyOrdered(order);
        long[] sequency = HadamardMatrices.SignChangesPerColumn(gsr).data<long>().ToArray();
        Assert.Equal(Enumerable.Range(0, order).Select(i => (long)i), sequency);
        Assert.True(OrthogonalityError(gsr) < 1e-12);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(40)]
    public void Gsr_sequency_never_decreases_for_paley_based_orders(int order)
    {
        using var scope = NewDisposeScope();
        long[] sequency = HadamardMatrices.SignChangesPerColumn(HadamardMatrices.SequencyOrdered(order)).data<long>().ToArray();
        for (int k = 1; k < order; k++) Assert.True(sequency[k] >= sequency[k - 1], $"column {k}");
    }

    [Fact]
    public void Gsr_is_the_hadamard_matrix_with_columns_permuted()
    {
        // FP-Quant builds gsr as hadamard[:, argsort(sign changes per column)]; each gsr column must be a column of H.
        using var scope = NewDisposeScope();
        Tensor h = HadamardMatrices.Orthonormal(32);
        Tensor gsr = HadamardMatrices.SequencyOrdered(32);
        Tensor matches = gsr.t().matmul(h).abs().gt(0.999).sum(dim: 1);
        Assert.True(matches.eq(1).all().item<bool>());
    }
}
