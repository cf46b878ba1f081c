using QuantSharp.Algorithms.FlatQuant;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms.FlatQuant;

public class KroneckerTests
{
    [Theory]
    [InlineData(4096, 64, 64)]
    [InlineData(14336, 112, 128)]
    [InlineData(384, 16, 24)]
    [InlineData(1408, 32, 44)]
    [InlineData(18944, 128, 148)]
    [InlineData(29568, 168, 176)]
    [InlineData(7, 1, 7)]
    public void FactorsAreTheDivisorPairClosestToTheSquareRoot(int n, int left, int right) =>
        Assert.Equal((left, right), Kronecker.Factors(n));

    [Theory]
    [InlineData(384)]
    [InlineData(1408)]
    [InlineData(96)]
    [InlineData(7)]
    public void ApplyEqualsTheDenseKroneckerProduct(int n)
    {
        var (n1, n2) = Kronecker.Factors(n);
        var gen = new TorchSharp.torch.Generator(1234, CPU);
        var x = randn([3, 5, n], float64, generator: gen);
        var l = randn([n1, n1], float64, generator: gen);
        var r = randn([n2, n2], float64, generator: gen);
        var dense = matmul(x, kron(l, r));
        var fast = Kronecker.Apply(x, l, r);
        double rel = ((fast - dense).abs().max() / dense.abs().max()).item<double>();
        Assert.True(rel < 1e-12, $"n={n}: relative difference {rel:E2}");
    }
}
