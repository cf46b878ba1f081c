using QuantSharp.Api;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Api;

public class QuantizerApiTests
{
    private static int[][] Calibration(int count, int len) => CalibrationData.Windows(Golden.EvalTokens()[..200_000], count, len, 42);

    private static CausalLM Micro() => CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);

    private static Tensor W(CausalLM m, int layer, string linear) =>
        m.Layers[layer].Linears().First(l => l.Name == linear).Linear.Weight;

    [Fact]
    public void RtnConfigQuantizesExactlyAsThePipelineWithTheSameSpec()
    {
        using var viaApi = Micro();
        using var qm = Quantizer.Quantize(viaApi, new RtnConfig { Bits = 4, GroupSize = 64, UseSym = false }, null);
        using var direct = Micro();
        using var r = LayerwiseQuantizer.Run(direct, new QuantizationConfig { Weights = QuantSpec.Int(4, 64, symmetric: false) }, null);
        foreach (var (a, b) in viaApi.Layers.SelectMany(l => l.Linears()).Zip(direct.Layers.SelectMany(l => l.Linears())))
            Assert.True(a.Linear.Weight.eq(b.Linear.Weight).all().item<bool>(), a.Name);
        Assert.Equal(28, qm.Result!.Reports.Count); // lm_head stays float by default
    }

    [Fact]
    public void LocalRulesPickBitsPerLinearAndFp32LeavesALinearUntouched()
    {
        using var original = Micro();
        using var model = Micro();
        var config = new RtnConfig { Bits = 4, GroupSize = 64 }
            .SetLocal("down_proj", new RtnConfig { Bits = 8, GroupSize = 64 })
            .SetLocal(@"layers\.1\.self_attn", new RtnConfig { Dtype = "fp32" });
        using var qm = Quantizer.Quantize(model, config, null);
        // layer 1's attention is float: identical to the original.
        foreach (var n in new[] { "self_attn.q_proj", "self_attn.o_proj" })
            Assert.True(W(model, 1, n).eq(W(original, 1, n)).all().item<bool>(), n);
        // down_proj lies on the 8-bit grid, q_proj on the 4-bit one (each a fixed point of its own quantizer).
        var params0 = qm.Result!.Layers[0].WeightParams;
        var q8 = WeightQuantizer.Create(QuantSpec.Int(8, 64));
        var q4 = WeightQuantizer.Create(QuantSpec.Int(4, 64));
        Assert.True(q8.QuantizeDequantize(W(model, 0, "mlp.down_proj"), params0["mlp.down_proj"]).eq(W(model, 0, "mlp.down_proj")).all().item<bool>());
        Assert.True(q4.QuantizeDequantize(W(model, 0, "self_attn.q_proj"), params0["self_attn.q_proj"]).eq(W(model, 0, "self_attn.q_proj")).all().item<bool>());
        Assert.False(qm.Result.Layers[1].WeightParams.ContainsKey("self_attn.q_proj"));
        // 8-bit down_proj is much closer to the float weight than 4-bit would be.
        double err8 = qm.Result.Reports.First(r => r.Name == "model.layers.0.mlp.down_proj").RelativeError;
        double err4 = qm.Result.Reports.First(r => r.Name == "model.layers.0.mlp.up_proj").RelativeError;
        Assert.True(err8 < err4 / 50, $"8-bit {err8:E2} vs 4-bit {err4:E2}");
    }

    [Fact]
    public void ARuleMatchingNothingIsAWarningNotAnError()
    {
        using var model = Micro();
        var q = Quantizer.Prepare(model, new RtnConfig().SetLocal("gate_prj", new RtnConfig { Bits = 8 }).SetLocal("Linear", new RtnConfig { Bits = 3 }));
        var w = Assert.Single(q.Warnings);
        Assert.Contains("local rule 'gate_prj'", w);
        Assert.Contains("matches no linear", w);
    }

    [Theory]
    [InlineData(0, 32, "bits 0: dtype int supports")]
    [InlineData(9, 32, "bits 9: dtype int supports")]
    [InlineData(4, 0, "group_size 0")]
    public void BadBitsAndGroupSizesAreClearErrors(int bits, int group, string expected)
    {
        using var model = Micro();
        var e = Assert.Throws<QuantSharpException>(() => Quantizer.Prepare(model, new RtnConfig { Bits = bits, GroupSize = group }));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AGroupSizeThatDoesNotDivideNamesTheTensor()
    {
        using var model = Micro();
        // 96 divides 768 (down_proj's input) but not 256 (every other linear's).
        var e = Assert.Throws<QuantSharpException>(() => Quantizer.Prepare(model, new RtnConfig { Dtype = "fp32" }.SetLocal("q_proj", new GptqConfig { GroupSize = 96 })));
        Assert.Contains("gptq group_size 96 does not divide the 256 input columns of tensor 'model.layers.0.self_attn.q_proj.weight'", e.Message);
    }

    [Fact]
    public void QuantLmHeadUntiesTheHeadAndKeepsTheEmbeddingsFloat()
    {
        using var original = Micro();
        using var model = Micro();
        using var qm = Quantizer.Quantize(model, new RtnConfig { Bits = 4, GroupSize = 32, QuantLmHead = true }, null);
        Assert.NotNull(model.LmHead);
        Assert.True(model.EmbedTokens.Weight.eq(original.EmbedTokens.Weight).all().item<bool>());
        Assert.False(model.LmHeadWeight.eq(original.EmbedTokens.Weight).all().item<bool>());
        var q4 = WeightQuantizer.Create(QuantSpec.Int(4, 32));
        Assert.True(q4.QuantizeDequantize(model.LmHeadWeight, qm.Result!.LmHeadParams!).eq(model.LmHeadWeight).all().item<bool>());
        Assert.Contains(qm.Result.Reports, r => r.Name == "lm_head");
    }

    [Fact]
    public void TrueSequentialGptqReadsLaterInputsFromThePartlyQuantizedLayerAndBeatsRtn()
    {
        var calib = Calibration(4, 64);
        double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 256, maxWindows: 8, batchSize: 4).Perplexity;
        // Per channel (one group per row): the cheapest GPTQ solves, enough to see which inputs each stage reads.
        var gptq = new GptqConfig { Bits = 3, GroupSize = -1, UseSym = false };
        using var rtnModel = Micro();
        using (Quantizer.Quantize(rtnModel, new RtnConfig { Bits = 3, GroupSize = -1, UseSym = false }, null)) { }
        using var plainModel = Micro();
        using (Quantizer.Quantize(plainModel, gptq, calib)) { }
        using var seqModel = Micro();
        using (Quantizer.Quantize(seqModel, gptq with { TrueSequential = true }, calib)) { }
        // Layer 0's q/k/v read the embeddings either way; o_proj, gate/up and down_proj read the partly quantized layer.
        Assert.True(W(plainModel, 0, "self_attn.k_proj").eq(W(seqModel, 0, "self_attn.k_proj")).all().item<bool>());
        foreach (var later in new[] { "self_attn.o_proj", "mlp.up_proj", "mlp.down_proj" })
            Assert.False(W(plainModel, 0, later).eq(W(seqModel, 0, later)).all().item<bool>(), later);
        double rtn = Ppl(rtnModel), seq = Ppl(seqModel);
        Assert.True(seq < rtn, $"gptq true-sequential {seq:F3} vs rtn {rtn:F3}");
    }

    [Fact]
    public void GptqIncOptionsMapOntoTheSolversOptions()
    {
        using var model = Micro();
        var q = Quantizer.Prepare(model, new GptqConfig { HybridOrder = true, Percdamp = 0.05, BlockSize = 64, UseMseSearch = true, TrueSequential = true });
        var c = q.Recipe.Pipeline.For("model.layers.0.self_attn.q_proj");
        Assert.Equal((true, false, false, 0.05, 64), (c.Gptq.GroupAwareReorder, c.Gptq.ActOrder, c.Gptq.StaticGroups, c.Gptq.RelDamp, c.Gptq.BlockSize));
        Assert.Equal(ObserverKind.Mse, c.Weights!.Observer);
        Assert.Equal(QuantSpec.Int(4, 32, symmetric: true, ObserverKind.Mse), c.Weights);
        Assert.True(q.Recipe.Pipeline.TrueSequential);
        Assert.Null(q.Recipe.Pipeline.For("lm_head").Weights);
    }

    [Fact]
    public void BlockAlgorithmsMapOntoTheirOptionsAndMustBeGlobal()
    {
        using var model = Micro();
        var awq = Quantizer.Prepare(model, new AwqConfig { Bits = 3, GroupSize = 128, UseSym = false, UseAutoClip = false });
        Assert.Equal(QuantMethod.Awq, awq.Recipe.Pipeline.Method);
        Assert.False(awq.Recipe.Pipeline.Awq.UseAutoClip);
        Assert.True(awq.NeedsCalibration);
        var ar = Quantizer.Prepare(model, new AutoRoundConfig { Iters = 50, UseSym = false }).Recipe.Pipeline;
        Assert.Equal((QuantMethod.AutoRound, 50, 128), (ar.Method, ar.AutoRound.Iters, ar.Weights!.GroupSize));
        Assert.Contains("can only be the global algorithm", Assert.Throws<QuantSharpException>(() =>
            Quantizer.Prepare(model, new RtnConfig().SetLocal("mlp", new TeqConfig()))).Message);
        Assert.Contains("cannot take local rules", Assert.Throws<QuantSharpException>(() =>
            Quantizer.Prepare(model, new AwqConfig().SetLocal("down_proj", new RtnConfig { Bits = 8 }))).Message);
    }

    [Fact]
    public void GptqNeedsCalibrationAndActOrderWithoutStaticGroupsIsRefused()
    {
        using var model = Micro();
        var q = Quantizer.Prepare(model, new GptqConfig());
        Assert.True(q.NeedsCalibration);
        Assert.Contains("Calibrate", Assert.Throws<QuantSharpException>(() => q.Convert()).Message);
        var e = Assert.Throws<QuantSharpException>(() => Quantizer.Prepare(model, new GptqConfig { ActOrder = true }));
        Assert.Contains("static_groups", e.Message);
        Assert.Contains("exclude each other", Assert.Throws<QuantSharpException>(() =>
            Quantizer.Prepare(model, new GptqConfig { ActOrder = true, HybridOrder = true, StaticGroups = true })).Message);
    }
}
