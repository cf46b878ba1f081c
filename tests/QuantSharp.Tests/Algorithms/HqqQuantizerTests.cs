using QuantSharp.Algorithms.Hqq;
using QuantSharp.Quantizers;
using TorchSharp;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Algorithms;

public class HqqQuantizerTests
{
    [Fact]
    public void OneProximalStepByHand()
    {
        // 1 bit, group [0, 0.6, 1]: s = 1/(1 − 0) = 1, z = 0 → W_q = [0, 1, 1], W_r = W_q, W − W_r = [0, −0.4, 0].
        // shrink(−0.4) = −(0.4 − 0.4^(−0.3)/10) = −(0.4 − 0.1316378) = −0.2683622, so
        // z' = mean(W_q − (W − W_e)·s) = mean([0, 1 − 0.6 − 0.2683622, 0]) = 0.1316378/3.
        using var g = Matrix(1, 0f, 0.6f, 1f).reshape(1, 1, 3);
        using var s = torch.ones(1, 1, 1);
        using var z = torch.zeros(1, 1, 1);
        var (next, error) = HqqQuantizer.Step(g, s, z, 1, 10, 0.7);
        using (next)
        {
            Close([0.1316378f / 3], Floats(next), 1e-5f);
            Assert.Equal(0.4 / 3, error, 6);
        }
        using var shrunk = HqqQuantizer.Shrink(Vector(-0.4f, 0.1f, 0f, 2f), 10, 0.7);
        // |0.1|^(−0.3)/10 = 0.1995 > 0.1 → 0; zero stays 0; 2 − 2^(−0.3)/10 = 1.918775.
        Close([-0.2683622f, 0f, 0f, 1.918775f], Floats(shrunk), 1e-5f);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void MeanAbsoluteErrorIsBelowRtnOnRandomWeights(int bits)
    {
        using var scope = torch.NewDisposeScope();
        var w = torch.randn([64, 256], generator: new torch.Generator(11));
        var spec = QuantSpec.Int(bits, 64, symmetric: false);
        var q = WeightQuantizer.Create(spec);
        using var rtn = q.ComputeParams(w);
        using var hqq = HqqQuantizer.ComputeParams(w, spec, new HqqOptions { QuantZero = false });
        double rtnError = w.sub(q.QuantizeDequantize(w, rtn)).abs().mean().item<float>();
        double hqqError = w.sub(q.QuantizeDequantize(w, hqq)).abs().mean().item<float>();
        Assert.True(hqqError < rtnError, $"HQQ {hqqError} vs RTN {rtnError}");
        Assert.True(hqq.HasFractionalZero);
        // With the zero points quantized to 8 bits the result stays close to the float-zero one.
        using var hqq8 = HqqQuantizer.ComputeParams(w, spec, new HqqOptions());
        double hqq8Error = w.sub(q.QuantizeDequantize(w, hqq8)).abs().mean().item<float>();
        Assert.True(hqq8Error < rtnError * 1.01, $"HQQ quant-zero {hqq8Error} vs RTN {rtnError}");
    }

    [Fact]
    public void ZeroAndScaleMetaQuantizationUseEightBitRanges()
    {
        // [0, 1, 2.55]: s = 255/2.55 = 100, z = 0 → exact on the 0.01 grid; 1.004 rounds to 1.
        using var v = Vector(0f, 1.004f, 2.55f);
        using var back = HqqQuantizer.AffineRoundTrip(v, 3);
        Close([0f, 1f, 2.55f], Floats(back), 1e-5f, 1e-6f);
    }

    [Fact]
    public void RejectsSymmetricOrNonIntSpecs()
    {
        using var w = torch.randn(4, 8);
        Assert.Contains("--asym", Assert.Throws<QuantSharpException>(() => HqqQuantizer.ComputeParams(w, QuantSpec.Int(4, 8), new HqqOptions())).Message);
        Assert.Throws<QuantSharpException>(() => HqqQuantizer.ComputeParams(w, QuantSpec.Fp(8), new HqqOptions()));
    }
}
