using TorchSharp;
using QuantSharp.Quantizers;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Quantizers;

public class QuantSpecValidationTests
{
    [Fact]
    public void NvFpRejectsAConflictingGroupSize()
    {
        var e = Assert.Throws<QuantSharpException>(() => WeightQuantizer.Create(new QuantSpec(QuantFormat.NvFp, 4, 32)));
        Assert.Contains("--w-group-size 32", e.Message);
        Assert.Contains("16", e.Message);
    }

    [Fact]
    public void MxFpRejectsAConflictingGroupSize()
    {
        var e = Assert.Throws<QuantSharpException>(() => WeightQuantizer.Create(new QuantSpec(QuantFormat.MxFp, 4, QuantSpec.PerChannel)));
        Assert.Contains("--w-group-size -1", e.Message);
        Assert.Contains("32", e.Message);
    }

    [Theory]
    [InlineData(QuantFormat.Int, 1)]
    [InlineData(QuantFormat.Int, 9)]
    [InlineData(QuantFormat.Fp, 8)]
    [InlineData(QuantFormat.Fp8, 4)]
    public void RejectsUnsupportedBits(QuantFormat format, int bits)
    {
        var e = Assert.Throws<QuantSharpException>(() => WeightQuantizer.Create(new QuantSpec(format, bits, 32)));
        Assert.Contains($"--w-bits {bits}", e.Message);
    }

    [Fact]
    public void RejectsAsymmetricFloatFormats()
    {
        var e = Assert.Throws<QuantSharpException>(() => WeightQuantizer.Create(new QuantSpec(QuantFormat.Fp, 4, 32, Symmetric: false)));
        Assert.Contains("symmetric", e.Message);
    }

    [Fact]
    public void GroupSizeMustDivideTheInputWidth()
    {
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 48));
        using var w = torch.zeros(2, 100);
        var e = Assert.Throws<QuantSharpException>(() => q.ComputeParams(w, tensorName: "model.layers.0.mlp.down_proj.weight"));
        Assert.Contains("model.layers.0.mlp.down_proj.weight", e.Message);
        Assert.Contains("--w-group-size 48", e.Message);
    }

    [Fact]
    public void NonFiniteWeightsAreReported()
    {
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 2));
        using var w = Matrix(1, 1f, float.NaN, 2f, 3f);
        var e = Assert.Throws<QuantSharpException>(() => q.ComputeParams(w, tensorName: "bad.weight"));
        Assert.Contains("bad.weight", e.Message);
    }

    [Fact]
    public void ActivationFlagsAreNamedAsSuch()
    {
        var e = Assert.Throws<QuantSharpException>(() => new ActivationQuantizer(new QuantSpec(QuantFormat.NvFp, 4, 64)));
        Assert.Contains("--a-group-size 64", e.Message);
    }
}
