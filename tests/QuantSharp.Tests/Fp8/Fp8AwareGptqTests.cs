using System.Text.Json.Nodes;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Api;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Formats;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Fp8;

/// <summary>INC's DPQ (fp8_aware GPTQ): s8, the protective range, FP8-exact dequantized weights, save/load.</summary>
public class Fp8AwareGptqTests
{
    private static QuantSpec Spec(E4M3Variant variant, bool symmetric = true, int groupSize = 128) =>
        QuantSpec.Int(4, groupSize, symmetric) with { Fp8Aware = true, Fp8Variant = variant };

    [Fact]
    public void ProtectiveRangeOfFourBitsLeavesOneIntegerStepBelowTheFp8Maximum()
    {
        Assert.Equal(224f, Fp8AwareScaling.ProtectiveRange(E4M3Variant.Gaudi, 4));
        Assert.Equal(448f - 448f / 15f, Fp8AwareScaling.ProtectiveRange(E4M3Variant.Ocp, 4));
        Assert.Equal(240f - 240f / 255f, Fp8AwareScaling.ProtectiveRange(E4M3Variant.Gaudi, 8));
        Assert.Equal(224f, new GptqConfig { Fp8Aware = true, Fp8Variant = "gaudi" }.ProtectiveRange);
    }

    [Theory]
    // max|W| = 1: 1/224 = 2^-7.81 → 2^-7 (Gaudi); 1/418.13 = 2^-8.71 → 2^-8 (OCP).
    [InlineData(E4M3Variant.Gaudi, 1f, -7)]
    [InlineData(E4M3Variant.Ocp, 1f, -8)]
    // max|W| = 224 · 2^-3 = 28 on Gaudi: the ratio is exactly 2^-3, which ceil keeps.
    [InlineData(E4M3Variant.Gaudi, 28f, -3)]
    [InlineData(E4M3Variant.Gaudi, 28.001f, -2)]
    // Tiny weights: the floor 1/(F·512): 1/122880 = 2^-16.9 → 2^-16 (Gaudi), 1/229376 = 2^-17.8 → 2^-17 (OCP).
    [InlineData(E4M3Variant.Gaudi, 1e-9f, -16)]
    [InlineData(E4M3Variant.Ocp, 1e-9f, -17)]
    [InlineData(E4M3Variant.Ocp, 0f, -17)]
    public void TensorScaleIsThePowerOfTwoAboveMaxOverRAndAtLeastTheMinimumClip(E4M3Variant variant, float maxAbs, int exponent)
    {
        using var w = tensor(new[] { 0.5f * maxAbs, -maxAbs, 0f, 0.25f * maxAbs }).reshape(2, 2);
        using var s8 = Fp8AwareScaling.TensorScale(w, variant, 4);
        Assert.Equal(MathF.ScaleB(1f, exponent), s8.item<float>());
        Assert.Equal(1f / (MiniFloatFormat.E4M3Of(variant).MaxFinite * 512f), Fp8AwareScaling.MinScale(variant));
    }

    [Theory]
    [InlineData(E4M3Variant.Gaudi, true, true)]
    [InlineData(E4M3Variant.Ocp, true, true)]
    [InlineData(E4M3Variant.Ocp, false, true)]
    [InlineData(E4M3Variant.Gaudi, false, false)]
    [InlineData(E4M3Variant.Ocp, true, false)]
    public void EveryDequantizedGptqWeightIsAnFp8ValueWithinTheProtectiveRange(E4M3Variant variant, bool symmetric, bool staticGroups)
    {
        using var scope = NewDisposeScope();
        var generator = manual_seed(7);
        Tensor w = randn(48, 256, generator: generator).mul_(0.05f);
        w[3, 17] = tensor(2.5f); // an outlier sets s8
        Tensor x = randn(512, 256, generator: generator);
        Tensor h = x.t().matmul(x).div_(512);
        var quantizer = WeightQuantizer.Create(Spec(variant, symmetric));
        using var r = GptqSolver.Quantize(w, h, quantizer, new GptqOptions { StaticGroups = staticGroups });

        Tensor s8 = r.Params.GlobalScale!;
        Assert.Equal(Fp8AwareScaling.TensorScale(w, variant, 4).item<float>(), s8.item<float>());
        Tensor fp8 = r.Weight.div(s8);
        float range = Fp8AwareScaling.ProtectiveRange(variant, 4);
        Assert.True(MiniFloatFormat.E4M3Of(variant).Round(fp8).eq(fp8).all().item<bool>(), "a value is not an E4M3 value");
        Assert.True(fp8.abs().le(range).all().item<bool>(), $"a value exceeds R = {range}");
        // The integer codes reproduce every value exactly (what the packed format stores).
        Tensor codes = quantizer.Codes(r.Weight, r.Params);
        Assert.True(quantizer.Dequantize(codes, r.Params).eq(r.Weight).all().item<bool>());
        // It is still a GPTQ solve: far closer to W than to zero.
        Assert.True(r.RelativeError < 0.05, $"relative error {r.RelativeError}");
    }

    [Fact]
    public void GroupParametersAreThoseOfTheIntQuantizerOnW8()
    {
        using var scope = NewDisposeScope();
        Tensor w = randn(8, 64, generator: manual_seed(3));
        var spec = Spec(E4M3Variant.Gaudi, symmetric: false, groupSize: 32);
        using var p = WeightQuantizer.Create(spec).ComputeParams(w);
        Tensor s8 = Fp8AwareScaling.TensorScale(w, E4M3Variant.Gaudi, 4);
        Tensor w8 = MiniFloatFormat.E4M3Gaudi.Round(w.div(s8).clamp(-224, 224));
        using var expected = WeightQuantizer.Create(QuantSpec.Int(4, 32, symmetric: false)).ComputeParams(w8);
        Assert.True(p.Scale.eq(expected.Scale).all().item<bool>());
        Assert.True(p.Zero!.eq(expected.Zero!).all().item<bool>());
        Assert.Equal(s8.item<float>(), p.GlobalScale!.item<float>());
    }

    [Fact]
    public void ASharedSolveOfTwoWeightsKeepsEachWeightsOwnS8()
    {
        using var scope = NewDisposeScope();
        var generator = manual_seed(11);
        Tensor a = randn(16, 128, generator: generator).mul_(0.02f), b = randn(24, 128, generator: generator).mul_(3f);
        Tensor x = randn(256, 128, generator: generator);
        Tensor h = x.t().matmul(x);
        var quantizer = WeightQuantizer.Create(Spec(E4M3Variant.Ocp));
        var shared = GptqSolver.QuantizeShared([a, b], h, quantizer, new GptqOptions(), [quantizer.ComputeGlobalScale(a), quantizer.ComputeGlobalScale(b)]);
        using var alone = GptqSolver.Quantize(b, h, quantizer, globalScale: quantizer.ComputeGlobalScale(b));
        Assert.NotEqual(shared[0].Params.GlobalScale!.item<float>(), shared[1].Params.GlobalScale!.item<float>());
        Assert.True(shared[1].Weight.eq(alone.Weight).all().item<bool>());
        foreach (var r in shared) r.Dispose();
    }

    [Fact]
    public void SaveLoadEvalRoundTripKeepsThePerplexityAndRecordsS8AndTheVariant()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var config = RecipeJson.Parse(JsonNode.Parse("""{"gptq": {"global": {"bits": 4, "group_size": 128, "static_groups": true, "fp8_aware": true, "fp8_variant": "gaudi"}}}"""), "test");
        var prepared = Quantizer.Prepare(model, config);
        prepared.Calibrate(CalibrationData.Windows(Golden.EvalTokens()[..50_000], 2, 64, 42));
        using var qm = prepared.Convert();
        string outDir = Path.Combine(dir.Path, "q");
        qm.Save(outDir);
        using var loaded = QuantizedModel.Load(outDir);
        double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 256, maxWindows: 2, batchSize: 4).Perplexity;
        double before = Ppl(model), after = Ppl(loaded.Model);
        Assert.InRange(after / before - 1, -0.001, 0.001);
        using (var q = model.Layers[1].Linears().Single(l => l.Name == "mlp.down_proj").Linear.Weight.detach().clone())
        using (var back = loaded.Model.Layers[1].Linears().Single(l => l.Name == "mlp.down_proj").Linear.Weight)
            Assert.True(q.eq(back).all().item<bool>());

        var storage = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "qconfig.json")))!["layers"]!["model.layers.0.self_attn.q_proj"]!["storage"]!;
        Assert.True(storage["fp8_aware"]!.GetValue<bool>());
        Assert.Equal("gaudi", storage["fp8_variant"]!.GetValue<string>());
        using var ckpt = SafetensorsCheckpoint.Open(outDir);
        using var s8 = ckpt.Read("model.layers.0.self_attn.q_proj.global_scale");
        float value = s8.item<float>();
        Assert.Equal(MathF.ScaleB(1f, MathF.ILogB(value)), value);
    }

    [Theory]
    [InlineData("""{"gptq": {"global": {"dtype": "nf4", "fp8_aware": true}}}""", "fp8_aware true: applies to dtype int")]
    [InlineData("""{"gptq": {"global": {"bits": 4, "fp8_aware": true, "fp8_variant": "e5m2"}}}""", "fp8_variant e5m2: expected ocp")]
    public void BadRecipesAreRefusedNamingTheKey(string recipe, string message)
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var e = Assert.Throws<QuantSharpException>(() => Quantizer.Prepare(model, RecipeJson.Parse(JsonNode.Parse(recipe), "r.json")));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Fp8AwareNeedsTheIntFormat()
    {
        var e = Assert.Throws<QuantSharpException>(() => WeightQuantizer.Create(QuantSpec.Fp8() with { Fp8Aware = true }));
        Assert.Contains("--fp8-aware applies to format int", e.Message);
    }

    [Fact]
    public void CliRefusesFp8AwareWithAnotherFormatAndAnUnknownVariant()
    {
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "gptq", "--format", "nvfp", "--fp8-aware"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--fp8-aware applies to format int", r.StdErr);
        r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "gptq", "--fp8-aware", "--fp8-variant", "fnuz"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--fp8-variant fnuz", r.StdErr);
        r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "gptq", "--fp8-aware", "--save", "/tmp/never", "--export", "gptq"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("cannot hold the per-tensor FP8 scale s8", r.StdErr);
    }
}
