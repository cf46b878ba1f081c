using QuantSharp.Algorithms.AutoRound;
using QuantSharp.Algorithms.Awq;
using QuantSharp.Algorithms.EquivalentScaling;
using QuantSharp.Algorithms.Teq;
using QuantSharp.Calibration;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms.Block;

public class BlockAlgorithmTests
{
    private static readonly QuantSpec W3 = QuantSpec.Int(3, 64, symmetric: false);

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static double MaxRelative(Tensor a, Tensor b) => ((a - b).abs().max() / a.abs().max()).item<float>();

    [Fact]
    public void FoldingScalesAtEveryFoldPointKeepsTheLogits()
    {
        using var f = new BlockFixture(W3);
        var (ids, _) = Golden.ReferenceLogits(Fixtures.MicroQwen3);
        using var _ = no_grad();
        var before = f.Model.Forward(ids.unsqueeze(0), null);
        var oBefore = f.Layer.SelfAttn.OProj.Weight.clone();
        var ctx = f.Context();
        var points = ScaleFoldPoint.Of(f.Layer, f.Model.Config, tieGroupedQuery: true);
        // micro-qwen3 has 4 query heads over 2 kv heads: o_proj's scale is tied and folds into v_proj.
        Assert.Equal(["qkv", "o", "gate_up", "down"], points.Select(p => p.Slot));
        Assert.Equal(2 * 64, points[1].Width);
        manual_seed(3);
        foreach (var p in points) p.Fold(ctx, (randn(p.Width) * 0.5).exp());
        var after = f.Model.Forward(ids.unsqueeze(0), null);
        Assert.True(MaxRelative(before, after) < 1e-4, $"logits moved by {MaxRelative(before, after):E2} (relative to max)");
        Assert.False(oBefore.allclose(f.Layer.SelfAttn.OProj.Weight), "o_proj was not scaled");
        // Without tying, GQA leaves o_proj out.
        Assert.DoesNotContain(ScaleFoldPoint.Of(f.Layer, f.Model.Config, tieGroupedQuery: false), p => p.Slot == "o");
    }

    [Fact]
    public void TeqFoldsItsTrainedScalesWithoutChangingTheFloatBlock()
    {
        using var f = new BlockFixture(W3);
        var before = f.Outputs();
        var norm0 = f.Layer.InputLayerNorm.Weight.clone();
        using var teq = new TeqBlockAlgorithm(new TeqOptions { Steps = 8, LearningRate = 5e-3 });
        teq.Apply(f.Context());
        Assert.Equal(8, teq.LastLosses.Count);
        Assert.All(teq.LastLosses, l => Assert.True(double.IsFinite(l)));
        Assert.False(norm0.allclose(f.Layer.InputLayerNorm.Weight), "the trained scales were not folded into input_layernorm");
        var after = f.Outputs();
        for (int i = 0; i < before.Count; i++)
            Assert.True(MaxRelative(before[i], after[i]) < 1e-4, $"batch {i}: float block moved by {MaxRelative(before[i], after[i]):E2}");
    }

    [Fact]
    public void AwqPicksTheAlphaWithTheLowestBlockErrorOnTheGrid()
    {
        using var f = new BlockFixture(W3);
        var reference = f.Outputs();
        using var awq = new AwqBlockAlgorithm(new AwqOptions { UseAutoClip = false });
        awq.Apply(f.Context());
        double[] losses = awq.LastLosses["qkv"];
        Assert.Equal(20, losses.Length);
        Assert.Equal(Array.IndexOf(losses, losses.Min()) / 20.0, awq.LastAlphas["qkv"]);

        // Recompute the q/k/v losses another way: fold s into a fresh copy's input_layernorm and RTN-quantize W·s.
        using var g = new BlockFixture(W3);
        using var _ = no_grad();
        var normIn = g.Inputs.Select(x => g.Layer.InputLayerNorm.forward(x).reshape(-1, 256)).ToList();
        var xMean = cat(normIn, 0).abs().mean([0]);
        var names = new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" };
        var wMean = AwqBlockAlgorithm.WeightStatistic(cat(names.Select(n => g.FloatWeights[n]).ToArray(), 0), 64);
        var norm = g.Layer.InputLayerNorm.Weight.clone();
        var original = names.ToDictionary(n => n, n => g.FloatWeights[n].clone());
        for (int i = 0; i < 20; i += 4)
        {
            var s = AwqBlockAlgorithm.ScaleFor(xMean, wMean, i / 20.0, duo: true);
            g.Layer.InputLayerNorm.ReplaceWeight(norm.div(s));
            foreach (var n in names)
            {
                var ws = original[n] * s.unsqueeze(0);
                using var p = g.Quantizer.ComputeParams(ws);
                g.Layer.Linears().First(l => l.Name == n).Linear.ReplaceWeight(g.Quantizer.QuantizeDequantize(ws, p));
            }
            double loss = g.Inputs.Select((x, b) => (g.Layer.Forward(x, g.Cos, g.Sin) - reference[b]).pow(2).mean().item<float>()).Sum();
            Assert.True(Math.Abs(loss - losses[i]) <= 1e-3 * losses[i], $"alpha {i / 20.0}: folded loss {loss:E4} vs searched {losses[i]:E4}");
        }
        // The search was worth it: the chosen alpha beats alpha 0 (plain RTN of the scaled-by-w̄ weights) or equals it.
        Assert.True(losses.Min() <= losses[0]);
    }

    [Fact]
    public void AwqTeqAndAutoRoundBeatRtnOnTheBlockOutput()
    {
        double rtn;
        using (var f = new BlockFixture(W3))
        {
            var reference = f.Outputs();
            f.QuantizeRemainingWithRtn();
            rtn = BlockFixture.Mse(reference, f.Outputs());
        }
        var errors = new Dictionary<string, double>();
        foreach (var (label, make) in new (string, Func<IBlockAlgorithm>)[]
                 {
                     ("awq", () => new AwqBlockAlgorithm(new AwqOptions())),
                     ("teq", () => new TeqBlockAlgorithm(new TeqOptions { Steps = 40, LearningRate = 5e-3 })),
                     ("autoround", () => new AutoRoundBlockAlgorithm(new AutoRoundOptions { Iters = 40 })),
                 })
        {
            using var f = new BlockFixture(W3);
            var reference = f.Outputs();
            using var algorithm = make();
            algorithm.Apply(f.Context());
            f.QuantizeRemainingWithRtn();
            errors[label] = BlockFixture.Mse(reference, f.Outputs());
            if (algorithm is AutoRoundBlockAlgorithm ar)
            {
                Assert.True(ar.LastGradientsFinite);
                Assert.All(ar.LastLosses, l => Assert.True(double.IsFinite(l)));
                Assert.Equal(7, f.Recorded.Count);
            }
        }
        foreach (var (label, e) in errors)
            Assert.True(e < rtn, $"{label}: block MSE {e:E4} is not below RTN's {rtn:E4} (all: {string.Join(", ", errors.Select(kv => $"{kv.Key} {kv.Value:E3}"))})");
    }

    [Theory]
    [InlineData(4, 64, false)]
    [InlineData(3, 128, true)]
    [InlineData(4, -1, false)]
    public void SteQuantizerMatchesIntRtnBitForBit(int bits, int group, bool symmetric)
    {
        manual_seed(11);
        var w = randn(48, 256) * 0.05;
        w[3] = zeros(256); // an all-zero row: scale 1, zero 0
        var spec = QuantSpec.Int(bits, group, symmetric);
        var q = WeightQuantizer.Create(spec);
        using var p = q.ComputeParams(w);
        var expected = q.QuantizeDequantize(w, p);
        var (actual, ap) = SteIntQuantizer.FakeQuantize(w, spec, zeros_like(w), ones(48, group > 0 ? 256 / group : 1, 1), ones(48, group > 0 ? 256 / group : 1, 1));
        Assert.True(Same(expected, actual), "STE fake quantization differs from IntWeightQuantizer");
        Assert.True(Same(p.Scale, ap.Scale));
        if (!symmetric) Assert.True(Same(p.Zero!, ap.Zero!));
        ap.Dispose();
    }

    [Fact]
    public void AutoRoundWithZeroIterationsIsExactlyRtn()
    {
        var calib = CalibrationData.Windows(Golden.EvalTokens()[..100_000], 4, 32, 42);
        using var rtnModel = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var arModel = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var spec = QuantSpec.Int(4, 128, symmetric: false);
        using var a = LayerwiseQuantizer.Run(rtnModel, new QuantizationConfig { Weights = spec }, calib);
        using var b = LayerwiseQuantizer.Run(arModel, new QuantizationConfig
        {
            Method = QuantMethod.AutoRound, Weights = spec, AutoRound = new AutoRoundOptions { Iters = 0 }, CalibBatchSize = 2,
        }, calib);
        for (int i = 0; i < rtnModel.Layers.Count; i++)
            foreach (var ((name, x), (_, y)) in rtnModel.Layers[i].Linears().Zip(arModel.Layers[i].Linears()))
                Assert.True(Same(x.Weight, y.Weight), $"layer {i} {name}: AutoRound with 0 iterations differs from RTN");
    }

    [Fact]
    public void BlockMethodsRejectWhatTheyCannotDo()
    {
        var teqFp = new QuantizationConfig { Method = QuantMethod.Teq, Weights = QuantSpec.Fp(32) };
        Assert.Contains("--format int", Assert.Throws<QuantSharpException>(teqFp.Validate).Message);
        var awqRotated = new QuantizationConfig { Method = QuantMethod.Awq, Weights = W3, Transform = QuantSharp.Transforms.TransformKind.Hadamard };
        Assert.Contains("--transform identity", Assert.Throws<QuantSharpException>(awqRotated.Validate).Message);
        var awqW16 = new QuantizationConfig { Method = QuantMethod.Awq, Activations = QuantSpec.Int(8, -1) };
        Assert.Contains("--w-bits", Assert.Throws<QuantSharpException>(awqW16.Validate).Message);
        Assert.Throws<QuantSharpException>(() => AutoRoundOptions.Preset("fast"));
    }
}
