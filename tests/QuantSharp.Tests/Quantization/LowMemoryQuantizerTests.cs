using System.Text.Json.Nodes;
using QuantSharp.Api;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

/// <summary>
/// The layer-wise (low-memory) mode streams the checkpoint one tensor at a time; its folder must be the normal mode's
/// --save folder byte for byte (every file: tensors, qconfig.json, config.json, tokenizer).
/// </summary>
public class LowMemoryQuantizerTests
{
    /// <summary>
    /// Runs the CLI command <paramref name="common"/> twice, normal `--save` (with a one-window eval) and `--layer-wise
    /// --json`, asserts both succeed with byte-identical folders, and returns the layer-wise run's JSON report.
    /// </summary>
    internal static JsonNode NormalAndLayerWiseCliRuns(TempDir dir, string[] common)
    {
        string normal = Path.Combine(dir.Path, "normal"), streamed = Path.Combine(dir.Path, "streamed"), json = dir.File("lw.json");
        var a = CliRunner.Run([.. common, "--save", normal, "--skip-baseline", "--eval", Fixtures.EvalText, "--eval-seq-len", "128", "--eval-max-windows", "1"]);
        Assert.True(a.ExitCode == 0, a.StdErr + a.StdOut);
        var b = CliRunner.Run([.. common, "--save", streamed, "--layer-wise", "--json", json]);
        Assert.True(b.ExitCode == 0, b.StdErr + b.StdOut);
        FolderAssert.ByteIdentical(normal, streamed);
        return JsonNode.Parse(File.ReadAllText(json))!;
    }

    [Fact]
    public void LayoutListsTheLoadedModelsParametersInStateDictOrder()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var expected = model.StateDict().Select(x => (x.Name, string.Join(",", x.Tensor.shape))).ToArray();
        var actual = ModelLayout.Parameters(model.Config).Select(p => (p.Name, string.Join(",", p.Shape))).ToArray();
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData("""{"rtn": {"global": {"bits": 4, "group_size": 128, "use_sym": false}}}""", "fp32")]
    [InlineData("""{"rtn": {"global": {"bits": 3, "group_size": 32, "use_sym": true, "quant_lm_head": true}, "local": {"down_proj": {"bits": 8}, "v_proj": {"dtype": "fp32"}}}}""", "bf16")]
    [InlineData("""{"rtn": {"global": {"dtype": "nf4", "group_size": 64, "use_double_quant": true}, "local": {"q_proj": {"dtype": "int", "bits": 4, "use_full_range": true}, "down_proj": {"dtype": "int", "bits": 3, "use_sym": false, "group_dim": 0, "group_size": 32}, "k_proj": {"dtype": "fp4", "use_double_quant": false}, "o_proj": {"dtype": "fp4_e2m1", "use_mse_search": true}}}, "hqq": {"local": {"mlp.up_proj": {"bits": 4}}}}""", "fp32")]
    [InlineData("""{"hqq": {"global": {"bits": 4, "group_size": 64}}}""", "fp32")]
    public void RecipeOutputIsByteIdenticalToTheNormalModesSave(string recipeJson, string dtypeName)
    {
        var dtype = dtypeName == "bf16" ? bfloat16 : float32;
        using var dir = Fixtures.NewTempDir();
        var recipe = RecipeJson.Parse(JsonNode.Parse(recipeJson), "test");
        string normal = Path.Combine(dir.Path, "normal"), streamed = Path.Combine(dir.Path, "streamed");
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, dtype, CPU))
        using (var qm = Quantizer.Quantize(model, recipe, null))
            qm.Save(normal);

        var resolved = ResolvedRecipe.Resolve(ModelConfig.Load(Fixtures.MicroQwen3), recipe, new QuantizationConfig(), "test");
        // Small row blocks, so the row-local linears are quantized in several blocks (a 2 GB model's are).
        LowMemoryQuantizer.BlockElements = 256 * 48;
        var result = LowMemoryQuantizer.Run(Fixtures.MicroQwen3, resolved.Pipeline, dtype, streamed, recipe: RecipeJson.ToRecipe(resolved.Root),
            layerConfigs: resolved.ByLinear.ToDictionary(kv => kv.Key, kv => RecipeJson.Settings(kv.Value)));
        FolderAssert.ByteIdentical(normal, streamed);
        Assert.Equal(4 * 7 + (recipe.QuantLmHead ? 1 : 0) - (recipeJson.Contains("v_proj") ? 4 : 0), result.Reports.Count);
    }

    [Fact]
    public void FlagConfigOutputIsByteIdenticalToTheNormalModesQuantSharpExport()
    {
        // The flags path (no recipe): qconfig.json's per-linear config is derived from the spec.
        using var dir = Fixtures.NewTempDir();
        string normal = Path.Combine(dir.Path, "normal"), streamed = Path.Combine(dir.Path, "streamed");
        LowMemoryQuantizer.BlockElements = 256 * 100;
        var config = new QuantizationConfig { Method = QuantMethod.Rtn, Weights = new QuantSpec(QuantFormat.Int, 4, 32, false, ObserverKind.MinMax, QuantSharp.Formats.MxScaleRule.FpQuant) };
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        using (var result = LayerwiseQuantizer.Run(model, config, null))
            QuantSharp.Export.QuantSharpExporter.Write(result, normal);
        LowMemoryQuantizer.Run(Fixtures.MicroQwen3, config, float32, streamed);
        FolderAssert.ByteIdentical(normal, streamed);
    }

    [Fact]
    public void CliLayerWiseMatchesTheNormalSaveAndReportsMeasuredMemory()
    {
        using var dir = Fixtures.NewTempDir();
        var report = NormalAndLayerWiseCliRuns(dir, ["quantize", "--model", Fixtures.MicroQwen3, "--method", "rtn", "--format", "int", "--w-bits", "4",
            "--w-group-size", "64", "--asym", "--device", "cpu", "--quiet", "--export", "quantsharp"]);
        Assert.Equal("layer-wise", (string?)report["mode"]);
        Assert.True((long)report["peak_rss_bytes"]! >= (long)report["runtime_baseline_rss_bytes"]!);
        Assert.Equal(28, report["layers"]!.AsArray().Count);

        var d = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "rtn", "--w-bits", "4", "--layer-wise", "--quiet"]);
        Assert.Equal(2, d.ExitCode);
        Assert.Contains("--layer-wise writes the quantized model as it goes: pass --save DIR", d.StdErr);
    }

    /// <summary>Issue #12's bad input, in the normal and the layer-wise mode alike: one line naming the flag, key or tensor, exit 2.</summary>
    [Theory]
    [InlineData("""{"rtn": {"global": {"bits": 0}}}""", "bits 0: dtype int supports")]
    [InlineData("""{"rtn": {"global": {"bits": 9}}}""", "bits 9: dtype int supports")]
    [InlineData("""{"rtn": {"global": {"bits": 4, "group_size": 96}}}""", "group_size 96 does not divide the 256 input columns of tensor 'model.layers.0.self_attn.q_proj.weight'")]
    [InlineData("""{"rtm": {"global": {"bits": 4}}}""", "unknown algorithm 'rtm'")]
    public void BadRecipesAreRefusedInTheLayerWiseModeToo(string json, string expected)
    {
        using var dir = Fixtures.NewTempDir();
        string recipe = dir.File("bad.json");
        File.WriteAllText(recipe, json);
        var r = CliRunner.Run("quantize", "--model", Fixtures.MicroQwen3, "--recipe", recipe, "--layer-wise", "--save", Path.Combine(dir.Path, "q"), "--quiet");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("bad.json", r.StdErr);
        Assert.Contains(expected, r.StdErr);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "q")));
    }

    [Theory]
    [InlineData("--w-bits", "0", "--w-bits 0")]
    [InlineData("--w-bits", "9", "--w-bits 9")]
    [InlineData("--w-group-size", "96", "--w-group-size 96 does not divide hidden_size 256")]
    public void BadFlagsAreRefusedInTheLayerWiseModeToo(string flag, string value, string expected)
    {
        using var dir = Fixtures.NewTempDir();
        var r = CliRunner.Run("quantize", "--model", Fixtures.MicroQwen3, "--method", "rtn", flag, value, "--layer-wise", "--save", Path.Combine(dir.Path, "q"), "--quiet");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, r.StdErr);
    }

    [Fact]
    public void ALocalRuleMatchingNothingIsAWarningNamingTheRule()
    {
        using var dir = Fixtures.NewTempDir();
        string recipe = dir.File("r.json");
        File.WriteAllText(recipe, """{"rtn": {"global": {"bits": 4, "group_size": 64}, "local": {"gate_prj": {"bits": 8}}}}""");
        string outDir = Path.Combine(dir.Path, "q");
        var r = CliRunner.Run("quantize", "--model", Fixtures.MicroQwen3, "--recipe", recipe, "--layer-wise", "--save", outDir, "--quiet");
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        Assert.Contains("warning: " + recipe + ": local rule 'gate_prj' (rtn) matches no linear of the model.", r.StdErr);
        var qconfig = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "qconfig.json")))!;
        Assert.Equal(4, qconfig["layers"]!["model.layers.0.mlp.gate_proj"]!["storage"]!["bits"]!.GetValue<int>());
    }
}
