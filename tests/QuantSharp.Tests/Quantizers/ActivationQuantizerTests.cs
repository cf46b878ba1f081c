using TorchSharp;
using QuantSharp.Quantizers;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Quantizers;

public class ActivationQuantizerTests
{
    [Fact]
    public void QuantizesPerTokenAndGroup()
    {
        // Two tokens of hidden size 8 in groups of 4, INT4 symmetric. Token B = 10 × token A, so every group of B has
        // 10× the scale of A's and the same codes.
        float[] a = [1f, 2f, 3f, 7.5f, 0.1f, 0.2f, 0.3f, 0.75f];
        float[] both = [.. a, .. a.Select(v => 10 * v)];
        using var x = torch.tensor(both).reshape(1, 2, 8);
        using var quantizer = new ActivationQuantizer(QuantSpec.Int(4, 4));
        using var y = quantizer.QuantizeDequantize(x);
        Assert.Equal(new long[] { 1, 2, 8 }, y.shape);
        // group scales 2·7.5/15 = 1 and 0.1; 7.5 → 8 → clamped to 7
        float[] expectedA = [1f, 2f, 3f, 7f, 0.1f, 0.2f, 0.3f, 0.7f];
        Close([.. expectedA, .. expectedA.Select(v => 10 * v)], Floats(y), 1e-5f, 1e-6f);
    }

    [Fact]
    public void NvFpGlobalScaleIsTheMinimumOverCalibrationThenFrozen()
    {
        using var quantizer = new ActivationQuantizer(QuantSpec.NvFp4());
        Assert.True(quantizer.NeedsCalibration);
        using var small = torch.full(3, 16, 4f);
        using var large = torch.full(2, 16, -8f);
        using var zeros = torch.zeros(2, 16);
        quantizer.Observe(small);  // 448·6/4 = 672
        quantizer.Observe(zeros);  // ignored
        quantizer.Observe(large);  // 448·6/8 = 336
        quantizer.Freeze();
        Exact([336f], Floats(quantizer.GlobalScale!));
        Assert.Throws<InvalidOperationException>(() => quantizer.Observe(small));

        // A token at the calibration maximum maps its group scale to E4M3's top (8/6·336 = 448): exact round trip.
        using var y = quantizer.QuantizeDequantize(large);
        Close(Floats(large), Floats(y));
    }

    [Fact]
    public void NvFpWithoutCalibrationIsAnError()
    {
        using var quantizer = new ActivationQuantizer(QuantSpec.NvFp4());
        using var x = torch.ones(1, 16);
        Assert.Throws<InvalidOperationException>(() => quantizer.QuantizeDequantize(x));
        quantizer.Observe(torch.zeros(1, 16));
        Assert.Throws<QuantSharpException>(() => quantizer.Freeze());
    }

    [Fact]
    public void MxFpActivationsUseGroupsOf32()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var x = torch.randn(3, 5, 64);
        using var quantizer = new ActivationQuantizer(QuantSpec.MxFp4());
        var y = quantizer.QuantizeDequantize(x);
        // Same as quantizing the token matrix directly.
        var rows = x.reshape(-1, 64);
        var q = WeightQuantizer.Create(QuantSpec.MxFp4());
        using var p = q.ComputeParams(rows);
        Exact(Floats(q.QuantizeDequantize(rows, p)), Floats(y));
        Assert.Equal(new long[] { 15, 2 }, p.Scale.shape);
    }
}
