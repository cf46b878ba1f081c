using QuantSharp.Calibration;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

public class LayerCheckpointTests
{
    private sealed class SimulatedKill(int layer) : Exception($"killed after layer {layer}");

    internal static int[][] Calibration(int seed = 42) => CalibrationData.Windows(Golden.EvalTokens()[..50_000], 8, 64, seed);

    /// <summary>MR-GPTQ in miniature: GPTQ with act-order, NVFP4 W4A4 (calibrated activation scales), Hadamard 16.</summary>
    internal static QuantizationConfig MrGptq(LayerCheckpoint? checkpoint = null) => new()
    {
        Method = QuantMethod.Gptq,
        Weights = QuantSpec.NvFp4(),
        Activations = QuantSpec.NvFp4(),
        Transform = TransformKind.Hadamard,
        TransformGroupSize = 16,
        Gptq = new() { ActOrder = true },
        NumSequences = 8,
        SeqLen = 64,
        CalibBatchSize = 4,
        Checkpoint = checkpoint,
    };

    /// <summary>Every linear weight, weight parameter and activation global scale of a quantized model.</summary>
    internal static Dictionary<string, Tensor> Snapshot(CausalLM model, QuantizationResult result)
    {
        var all = new Dictionary<string, Tensor>();
        for (int i = 0; i < model.Layers.Count; i++)
        {
            foreach (var (name, linear) in model.Layers[i].Linears())
            {
                all[$"{i}.{name}.weight"] = linear.Weight.detach().clone();
                var p = result.Layers[i].WeightParams[name];
                all[$"{i}.{name}.scale"] = p.Scale.clone();
                if (p.ScaleBytes is not null) all[$"{i}.{name}.scale_bytes"] = p.ScaleBytes.clone();
                if (p.GlobalScale is not null) all[$"{i}.{name}.global"] = p.GlobalScale.clone();
            }
            foreach (var (slot, hook) in result.Layers[i].ActivationQuantizers)
                all[$"{i}.act.{slot}"] = hook.GlobalScale!.clone();
        }
        return all;
    }

    internal static void AssertBitIdentical(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, t) in expected)
            Assert.True(SameBits(t, actual[name]), $"{name} differs from the uninterrupted run");
    }

    internal static bool SameBits(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);

    [Fact]
    public void ResumingAfterAKillGivesBitIdenticalTensorsAndLogits()
    {
        var calib = Calibration();
        var (ids, _) = Golden.ReferenceLogits(Fixtures.MicroQwen3);
        using var tmp = Fixtures.NewTempDir();

        using var reference = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var uninterrupted = LayerwiseQuantizer.Run(reference, MrGptq(), calib);
        var expected = Snapshot(reference, uninterrupted);

        // First attempt: killed once the checkpoint of the second layer (index 1) is complete.
        using (var killed = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            var ck = new LayerCheckpoint(tmp.Path) { AfterLayerSaved = i => { if (i == 1) throw new SimulatedKill(i); } };
            Assert.Throws<SimulatedKill>(() => LayerwiseQuantizer.Run(killed, MrGptq(ck), calib));
        }
        Assert.True(File.Exists(tmp.File("layer-00001.safetensors")));
        Assert.False(File.Exists(tmp.File("layer-00002.safetensors")));
        Assert.False(File.Exists(tmp.File("hidden-00000.safetensors")), "activations older than the newest layer are deleted");

        // Second attempt, a fresh process's view: a newly loaded model and --resume.
        using var resumedModel = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var resume = new LayerCheckpoint(tmp.Path, mustExist: true, "--resume");
        var seen = new List<int>();
        using var resumed = LayerwiseQuantizer.Run(resumedModel, MrGptq(resume), calib, (layer, _, phase) => { if (phase == "calibrate") seen.Add(layer); });
        Assert.Equal(2, resume.ResumedLayers);
        Assert.Equal([2, 3], seen); // only the unfinished layers ran

        AssertBitIdentical(expected, Snapshot(resumedModel, resumed));
        Assert.Equal(uninterrupted.Reports.Select(r => (r.Name, r.RelativeError)), resumed.Reports.Select(r => (r.Name, r.RelativeError)));
        using var _ = no_grad();
        using var a = reference.Forward(ids.unsqueeze(0), null);
        using var b = resumedModel.Forward(ids.unsqueeze(0), null);
        Assert.True(SameBits(a, b), "logits of the resumed model differ from the uninterrupted run's");
    }

    /// <summary>A --recipe run (per-linear configurations, GPTQ beside RTN and a float linear) resumes too.</summary>
    [Fact]
    public void ARecipeRunResumesBitIdenticallyAndAnotherRecipeIsRefused()
    {
        var calib = Calibration();
        using var tmp = Fixtures.NewTempDir();
        const string Recipe = """{"gptq": {"global": {"bits": 4, "group_size": 64, "use_sym": false}}, "rtn": {"local": {"down_proj": {"bits": 8}, "v_proj": {"dtype": "fp32"}}}}""";
        QuantizationConfig Resolve(CausalLM m, string json, LayerCheckpoint? ck) =>
            QuantSharp.Api.ResolvedRecipe.Resolve(m, QuantSharp.Api.RecipeJson.Parse(System.Text.Json.Nodes.JsonNode.Parse(json), "r.json"),
                new QuantizationConfig { NumSequences = 8, SeqLen = 64, CalibBatchSize = 4, Checkpoint = ck }, "r.json").Pipeline;

        using var reference = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var uninterrupted = LayerwiseQuantizer.Run(reference, Resolve(reference, Recipe, null), calib);
        using (var killed = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            var ck = new LayerCheckpoint(tmp.Path) { AfterLayerSaved = i => { if (i == 1) throw new SimulatedKill(i); } };
            Assert.Throws<SimulatedKill>(() => LayerwiseQuantizer.Run(killed, Resolve(killed, Recipe, ck), calib));
        }
        using (var other = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            // The same global section, another local rule: refused, not silently mixed.
            var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(other,
                Resolve(other, Recipe.Replace("\"bits\": 8", "\"bits\": 6"), new LayerCheckpoint(tmp.Path, mustExist: true, "--resume")), calib));
            Assert.Contains("different quantization configuration", e.Message);
        }
        using var resumedModel = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var resume = new LayerCheckpoint(tmp.Path, mustExist: true, "--resume");
        using var resumed = LayerwiseQuantizer.Run(resumedModel, Resolve(resumedModel, Recipe, resume), calib);
        Assert.Equal(2, resume.ResumedLayers);
        var expected = reference.StateDict().ToDictionary(x => x.Name, x => x.Tensor);
        foreach (var (name, t) in resumedModel.StateDict())
            Assert.True(SameBits(expected[name], t), $"{name} differs from the uninterrupted run");
        Assert.Equal(uninterrupted.Reports.Select(r => (r.Name, r.RelativeError)), resumed.Reports.Select(r => (r.Name, r.RelativeError)));
    }

    [Fact]
    public void SameSeedAndInputsGiveBitIdenticalResultsOnCpu()
    {
        var calib = Calibration();
        // GPTQ's determinism is covered above (layers solved in two processes match the uninterrupted run); here the
        // seeded parts: random-sign rotations, calibration windows, NVFP4 activation scales.
        var config = MrGptq() with { Method = QuantMethod.Rtn, TransformRandomSigns = true, TransformSeed = 7 };
        using var m1 = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var r1 = LayerwiseQuantizer.Run(m1, config, calib);
        using var m2 = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var r2 = LayerwiseQuantizer.Run(m2, config, calib);
        AssertBitIdentical(Snapshot(m1, r1), Snapshot(m2, r2));
    }

    [Fact]
    public void ACheckpointOfAnotherConfigurationCalibrationOrModelIsRefused()
    {
        using var tmp = Fixtures.NewTempDir();
        var rtn = new QuantizationConfig { Weights = QuantSpec.Int(4, 64) };
        using (var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            var ck = new LayerCheckpoint(tmp.Path) { AfterLayerSaved = i => throw new SimulatedKill(i) };
            Assert.Throws<SimulatedKill>(() => LayerwiseQuantizer.Run(m, rtn with { Checkpoint = ck }, null));
        }

        using (var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(m,
                rtn with { Weights = QuantSpec.Int(3, 64), Checkpoint = new LayerCheckpoint(tmp.Path) }, null));
            Assert.Contains("different quantization configuration", e.Message);
            Assert.Contains(tmp.Path, e.Message);
        }
        using (var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            // Another checkpoint of the same architecture: different weights.
            using (no_grad()) m.Layers[0].SelfAttn.QProj.Weight.mul_(1.5f);
            var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(m, rtn with { Checkpoint = new LayerCheckpoint(tmp.Path) }, null));
            Assert.Contains("different model", e.Message);
        }
    }

    [Fact]
    public void ACheckpointOfOtherCalibrationDataIsRefused()
    {
        using var tmp = Fixtures.NewTempDir();
        var config = new QuantizationConfig { Method = QuantMethod.Gptq, Weights = QuantSpec.Int(4, 64), NumSequences = 4, SeqLen = 32 };
        using (var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            var ck = new LayerCheckpoint(tmp.Path) { AfterLayerSaved = i => throw new SimulatedKill(i) };
            Assert.Throws<SimulatedKill>(() => LayerwiseQuantizer.Run(m, config with { Checkpoint = ck },
                CalibrationData.Windows(Golden.EvalTokens()[..20_000], 4, 32, 1)));
        }
        using var m2 = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(m2, config with { Checkpoint = new LayerCheckpoint(tmp.Path) },
            CalibrationData.Windows(Golden.EvalTokens()[..20_000], 4, 32, 2)));
        Assert.Contains("different calibration data", e.Message);
    }

    [Fact]
    public void ResumeFromAFolderWithoutACheckpointIsAClearError()
    {
        using var tmp = Fixtures.NewTempDir();
        using var m = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(m,
            new QuantizationConfig { Weights = QuantSpec.Int(4, 64), Checkpoint = new LayerCheckpoint(tmp.Path, mustExist: true, "--resume") }, null));
        Assert.Contains("--resume", e.Message);
        Assert.Contains("state.json", e.Message);
    }
}
