using System.Text.Json.Nodes;
using QuantSharp.Api;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Formats;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantization.W4A8;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Fp8;

/// <summary>INC's hybrid W4A8: measure, then INT4 weights as FP8 and FP8 activations with pow2 scales.</summary>
public class W4A8Tests
{
    private static double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 256, maxWindows: 2, batchSize: 4).Perplexity;

    private static string Save(TempDir dir, string recipe, string name)
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var prepared = Quantizer.Prepare(model, RecipeJson.Parse(JsonNode.Parse(recipe), "test"));
        if (prepared.NeedsCalibration) prepared.Calibrate(CalibrationData.Windows(Golden.EvalTokens()[..50_000], 2, 64, 42));
        using var qm = prepared.Convert();
        string outDir = Path.Combine(dir.Path, name);
        qm.Save(outDir);
        return outDir;
    }

    [Fact]
    public void Fp8AwareInt4RunsAsW4A8WithinOnePercentAndItsWeightsStayTheSame()
    {
        using var dir = Fixtures.NewTempDir();
        string q = Save(dir, """{"gptq": {"global": {"bits": 4, "group_size": 128, "static_groups": true, "fp8_aware": true}}}""", "dpq");
        using var w4a16 = OnlineQuantization.Load(q, float32, CPU);
        using var loaded = OnlineQuantization.Load(q, float32, CPU);
        var lm = loaded.Model;
        Assert.Equal(E4M3Variant.Ocp, W4A8Conversion.RequireFourBitInt(q, lm));
        var m = ActivationMeasurement.Measure(lm, CalibrationData.Windows(Golden.EvalTokens()[..50_000], 2, 64, 7));
        string path = Path.Combine(q, ActivationMeasurement.DefaultFileName);
        m.Save(path);
        var reloaded = ActivationMeasurement.Load(path);
        Assert.Equal(m.Linears["model.layers.1.mlp.down_proj"], reloaded.Linears["model.layers.1.mlp.down_proj"]);
        var states = W4A8Conversion.Convert(lm, reloaded, E4M3Variant.Ocp, path);
        try
        {
            // FP8-aware weights are FP8 values times s8 already: the INT4 → FP8 step leaves them unchanged.
            var before = w4a16.Model.Layers[3].Linears().ToDictionary(l => l.Name, l => l.Linear.Weight);
            foreach (var (name, linear) in lm.Layers[3].Linears())
                Assert.True(linear.Weight.eq(before[name]).all().item<bool>(), name);
            // Activation scales are powers of two at or above absmax/448.
            using var scale = states[1].ActivationQuantizers["down"].GlobalScale!.clone();
            float s = scale.item<float>();
            Assert.Equal(MathF.ScaleB(1f, MathF.ILogB(s)), s);
            Assert.InRange(reloaded.Linears["model.layers.1.mlp.down_proj"].InputAbsMax / 448f, s / 2, s);
            double a16 = Ppl(w4a16.Model), a8 = Ppl(lm);
            Assert.InRange(a8 / a16 - 1, -0.01, 0.01);
        }
        finally
        {
            foreach (var st in states) st.Dispose();
        }
    }

    [Fact]
    public void PlainInt4WeightsAreRoundedToFp8ValuesTimesAPowerOfTwo()
    {
        using var dir = Fixtures.NewTempDir();
        string q = Save(dir, """{"rtn": {"global": {"bits": 4, "group_size": 32, "use_sym": false}}}""", "int4");
        using var loaded = OnlineQuantization.Load(q, float32, CPU);
        var m = ActivationMeasurement.Measure(loaded.Model, CalibrationData.Windows(Golden.EvalTokens()[..50_000], 2, 64, 7));
        var states = W4A8Conversion.Convert(loaded.Model, m, E4M3Variant.Gaudi, "memory");
        foreach (var st in states) st.Dispose();
        using var w = loaded.Model.Layers[0].SelfAttn.QProj.Weight.detach().clone();
        using var sw = Fp8AwareScaling.Pow2Ceil(w.abs().max().div(240f).reshape(1));
        using var fp8 = w.div(sw);
        Assert.True(MiniFloatFormat.E4M3Gaudi.Round(fp8).eq(fp8).all().item<bool>());
    }

    [Fact]
    public void ModelsNotQuantizedToFourBitsAreRefusedNamingTheTensor()
    {
        using var dir = Fixtures.NewTempDir();
        using (var plain = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
            Assert.Contains("tensor 'model.layers.0.self_attn.q_proj.weight' is a float weight",
                Assert.Throws<QuantSharpException>(() => W4A8Conversion.RequireFourBitInt(Fixtures.MicroQwen3, plain)).Message);
        string q = Save(dir, """{"rtn": {"global": {"bits": 4, "group_size": 64}, "local": {"layers\\.2\\.mlp\\.up_proj": {"bits": 8}}}}""", "mixed");
        using var loaded = OnlineQuantization.Load(q, float32, CPU);
        Assert.Contains("tensor 'model.layers.2.mlp.up_proj' is stored as 8-bit int, not 4-bit int",
            Assert.Throws<QuantSharpException>(() => W4A8Conversion.RequireFourBitInt(q, loaded.Model)).Message);
    }

    [Fact]
    public void AMeasureFileOfAnotherModelIsRefusedNamingTheTensor()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var good = model.Layers.SelectMany(l => l.Linears().Select(x => ($"model.layers.{l.Index}.{x.Name}", new LinearMeasurement(x.Linear.OutFeatures, x.Linear.InFeatures, 1f))))
            .ToDictionary(x => x.Item1, x => x.Item2);
        var wrongShape = new Dictionary<string, LinearMeasurement>(good) { ["model.layers.1.mlp.down_proj"] = new(256, 1024, 1f) };
        Assert.Contains("tensor 'model.layers.1.mlp.down_proj' is [256, 1024] there but [256, 768] in the model",
            Assert.Throws<QuantSharpException>(() => new ActivationMeasurement(wrongShape).CheckMatches(model, "m.json")).Message);
        var missing = new Dictionary<string, LinearMeasurement>(good);
        missing.Remove("model.layers.3.self_attn.k_proj");
        Assert.Contains("has no entry for tensor 'model.layers.3.self_attn.k_proj'",
            Assert.Throws<QuantSharpException>(() => new ActivationMeasurement(missing).CheckMatches(model, "m.json")).Message);
        var extra = new Dictionary<string, LinearMeasurement>(good) { ["model.layers.4.mlp.up_proj"] = new(768, 256, 1f) };
        Assert.Contains("names tensor 'model.layers.4.mlp.up_proj', which this model does not have",
            Assert.Throws<QuantSharpException>(() => new ActivationMeasurement(extra).CheckMatches(model, "m.json")).Message);
    }

    [Fact]
    public void CliW4A8OnAFloatModelExitsTwo()
    {
        var r = CliRunner.Run(["eval", "--model", Fixtures.MicroQwen3, "--data", Fixtures.EvalText, "--w4a8", "--measure", Fixtures.CalibText]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--w4a8:", r.StdErr);
        Assert.Contains("is a float weight", r.StdErr);
    }
}
