using QuantSharp.Algorithms.Gptq;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

public class NumericGuardTests
{
    [Fact]
    public void ANaNWeightIsReportedWithItsTensorName()
    {
        using var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using (no_grad()) m.Layers[1].SelfAttn.KProj.Weight[3, 5] = tensor(float.NaN);
        var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(m, new QuantizationConfig { Weights = QuantSpec.Int(4, 64) }, null));
        Assert.Contains("model.layers.1.self_attn.k_proj.weight", e.Message);
        Assert.Contains("[3, 5]", e.Message);
    }

    [Fact]
    public void InfiniteCalibrationActivationsAreReportedWithTheLayer()
    {
        using var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        // A huge down_proj row overflows layer 0's output to ±inf for every token.
        using (no_grad()) m.Layers[0].Mlp.DownProj.Weight[0].fill_(3e38f);
        var calib = QuantSharp.Calibration.CalibrationData.Windows(Golden.EvalTokens()[..20_000], 2, 32, 42);
        var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(m,
            new QuantizationConfig { Method = QuantMethod.Gptq, Weights = QuantSpec.Int(4, 64), NumSequences = 2, SeqLen = 32 }, calib));
        Assert.Contains("model.layers.0", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Fact]
    public void AHessianThatStaysIndefiniteIsItsOwnErrorNamingTheFallbackFlag()
    {
        // Negative definite: every dampening retry (damp is relative to a negative mean diagonal) fails.
        using var h = eye(8).neg();
        var e = Assert.Throws<HessianNotPositiveDefiniteException>(() =>
            HessianInverse.Compute(h, 0.01, 2, "model.layers.3.mlp.down_proj", _ => { }));
        Assert.Contains("model.layers.3.mlp.down_proj", e.Message);
        Assert.Contains("--allow-rtn-fallback", e.Message);
    }

    [Fact]
    public void RtnFallbackIsExactlyRoundToNearestAndWarns()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var w = randn(16, 64);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 32));
        var results = RtnFallback.Solve([w], eye(64), q, [null], "L", "layer 'L': Cholesky failed.");
        using var p = q.ComputeParams(w, null, "L");
        Assert.True(LayerCheckpointTests.SameBits(results[0].Weight, q.QuantizeDequantize(w, p)));
        Assert.Contains("--allow-rtn-fallback", results[0].Warnings[0]);
        Assert.Contains("layer 'L'", results[0].Warnings[0]);
    }
}
