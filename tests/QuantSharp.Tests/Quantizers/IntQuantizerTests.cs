using TorchSharp;
using QuantSharp.Quantizers;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Quantizers;

public class IntQuantizerTests
{
    [Fact]
    public void SymmetricPerChannelCodesAndValues()
    {
        // absmax 3 → scale 2·3/15 = 0.4; x/scale = [−3.75, 0.5, 1.75, 7.5] → round-half-even [−4, 0, 2, 8] → clamp 7.
        using var w = Matrix(1, -1.5f, 0.2f, 0.7f, 3f);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, QuantSpec.PerChannel));
        using var p = q.ComputeParams(w);
        Close([0.4f], Floats(p.Scale));
        Assert.Null(p.Zero);
        using var codes = q.Codes(w, p);
        Assert.Equal(torch.ScalarType.Int8, codes.dtype);
        Assert.Equal(new sbyte[] { -4, 0, 2, 7 }, SBytes(codes));
        using var dq = q.QuantizeDequantize(w, p);
        Close([-1.6f, 0f, 0.8f, 2.8f], Floats(dq));
        using var back = q.Dequantize(codes, p);
        Exact(Floats(dq), Floats(back));
    }

    [Fact]
    public void AsymmetricCodesZeroPointsAndValues()
    {
        // row 0: range widened to include 0 → [0, 3.5], scale 3.5/15, zero 0.
        // row 1: [−1, 2] → scale 0.2, zero round(1/0.2) = 5; codes round(x/0.2 + 5) = [0, 5, 10, 15].
        using var w = Matrix(2, 0.5f, 1f, 2f, 3.5f, -1f, 0f, 1f, 2f);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, QuantSpec.PerChannel, symmetric: false));
        using var p = q.ComputeParams(w);
        Close([3.5f / 15f, 0.2f], Floats(p.Scale));
        Exact([0f, 5f], Floats(p.Zero!));
        using var codes = q.Codes(w, p);
        Assert.Equal(torch.ScalarType.Byte, codes.dtype);
        Assert.Equal(new byte[] { 2, 4, 9, 15, 0, 5, 10, 15 }, Bytes(codes));
        using var dq = q.QuantizeDequantize(w, p);
        float s = 3.5f / 15f;
        Close([2 * s, 4 * s, 9 * s, 3.5f, -1f, 0f, 1f, 2f], Floats(dq), 1e-6f, 1e-6f);
    }

    [Fact]
    public void GroupsRunAlongTheInputDimension()
    {
        // Two groups of 2 per row: each gets its own absmax.
        using var w = Matrix(1, 1f, -0.5f, 10f, 5f);
        var q = WeightQuantizer.Create(QuantSpec.Int(8, 2));
        using var p = q.ComputeParams(w);
        Assert.Equal(new long[] { 1, 2 }, p.Scale.shape);
        Close([2f / 255f, 20f / 255f], Floats(p.Scale));
    }

    [Fact]
    public void PerTensorHasOneScale()
    {
        using var w = Matrix(2, 1f, -2f, 0.5f, 4f);
        var q = WeightQuantizer.Create(QuantSpec.Int(8, QuantSpec.PerTensor));
        using var p = q.ComputeParams(w);
        Assert.Equal(new long[] { 1, 1 }, p.Scale.shape);
        Close([8f / 255f], Floats(p.Scale));
        using var dq = q.QuantizeDequantize(w, p);
        Close(Floats(w), Floats(dq), 0.02f, 0.02f);
    }

    [Fact]
    public void AllZeroGroupGetsScaleOne()
    {
        using var w = Matrix(1, 0f, 0f, 0f, 0f);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, QuantSpec.PerChannel));
        using var p = q.ComputeParams(w);
        Exact([1f], Floats(p.Scale));
        using var dq = q.QuantizeDequantize(w, p);
        Exact([0f, 0f, 0f, 0f], Floats(dq));
    }
}
