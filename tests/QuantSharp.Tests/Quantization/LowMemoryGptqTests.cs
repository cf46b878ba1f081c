using System.Text.Json.Nodes;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Api;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Export;
using QuantSharp.Formats;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

/// <summary>
/// --layer-wise with GPTQ builds one decoder layer at a time from the checkpoint and runs the calibration windows
/// through it; its folder must be the normal mode's --save folder byte for byte, and the model it holds must score the
/// in-memory quantized model's perplexity once reloaded from disk.
/// </summary>
public class LowMemoryGptqTests
{
    private static int[][] Calibration() => CalibrationData.Windows(Golden.EvalTokens()[..100_000], 6, 64, 42);

    private static double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 128, maxWindows: 4, batchSize: 4).Perplexity;

    private static QuantSpec Int(int bits, int group, bool sym = false) =>
        new(QuantFormat.Int, bits, group, sym, ObserverKind.MinMax, MxScaleRule.FpQuant);

    private static readonly Dictionary<string, QuantizationConfig> FlagConfigs = new()
    {
        // act order with static groups (FP-Quant / INC defaults otherwise), calibration batches that do not divide the windows
        ["int4 g64 act-order static"] = new QuantizationConfig { Method = QuantMethod.Gptq, Weights = Int(4, 64), CalibBatchSize = 4,
            Gptq = new GptqOptions { ActOrder = true, StaticGroups = true } },
        // INC's dynamic groups with a small block size and a larger damp, true-sequential stages, per-channel sym
        ["int3 per-channel dynamic true-sequential"] = new QuantizationConfig { Method = QuantMethod.Gptq, Weights = Int(3, QuantSpec.PerChannel, sym: true),
            TrueSequential = true, Gptq = new GptqOptions { StaticGroups = false, BlockSize = 32, RelDamp = 0.05 } },
        // an FP-Quant format: NVFP4 weights (W4A16) with q/k/v and gate/up sharing their global scale
        ["nvfp4 fused global scale"] = new QuantizationConfig { Method = QuantMethod.Gptq, FuseGlobalScale = true,
            Weights = new QuantSpec(QuantFormat.NvFp, 4, 16, true, ObserverKind.MinMax, MxScaleRule.FpQuant) },
    };

    [Theory]
    [InlineData("int4 g64 act-order static")]
    [InlineData("int3 per-channel dynamic true-sequential")]
    [InlineData("nvfp4 fused global scale")]
    public void GptqFlagConfigIsByteIdenticalToTheNormalModesSaveAndScoresTheSamePerplexityFromDisk(string label)
    {
        var config = FlagConfigs[label];
        using var dir = Fixtures.NewTempDir();
        string normal = Path.Combine(dir.Path, "normal"), streamed = Path.Combine(dir.Path, "streamed");
        var calibration = Calibration();
        double inMemory;
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        using (var result = LayerwiseQuantizer.Run(model, config, calibration))
        {
            QuantSharpExporter.Write(result, normal);
            inMemory = Ppl(model);
        }
        var lw = LowMemoryQuantizer.Run(Fixtures.MicroQwen3, config, float32, streamed, calibration: calibration);
        FolderAssert.ByteIdentical(normal, streamed);
        Assert.True(lw.Reports.Count == 28 && lw.Reports.All(r => r.HessianWeighted), label);
        using var loaded = QuantizedModel.Load(streamed);
        Assert.Equal(inMemory, Ppl(loaded.Model));
    }

    [Fact]
    public void MixedGptqRecipeWithQuantizedHeadIsByteIdenticalInBf16()
    {
        // GAR order, dynamic groups, true-sequential, block size and damp from the recipe; RTN, HQQ and float linears
        // mixed in; lm_head quantized (RTN, as INC does) from the tied embeddings.
        const string json = """
            {"gptq": {"global": {"bits": 4, "group_size": 32, "use_sym": false, "hybrid_order": true, "static_groups": false,
                                 "true_sequential": true, "block_size": 64, "percdamp": 0.05, "quant_lm_head": true},
                      "local": {"down_proj": {"bits": 3}, "v_proj": {"dtype": "fp32"}}},
             "rtn": {"local": {"o_proj": {"bits": 3}}},
             "hqq": {"local": {"mlp.up_proj": {"bits": 4}}}}
            """;
        using var dir = Fixtures.NewTempDir();
        var recipe = RecipeJson.Parse(JsonNode.Parse(json), "test");
        string normal = Path.Combine(dir.Path, "normal"), streamed = Path.Combine(dir.Path, "streamed");
        var calibration = Calibration();
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, bfloat16, CPU))
        {
            var prepared = Quantizer.Prepare(model, recipe);
            prepared.Calibrate(calibration);
            using var qm = prepared.Convert();
            qm.Save(normal);
        }
        var resolved = ResolvedRecipe.Resolve(ModelConfig.Load(Fixtures.MicroQwen3), recipe, new QuantizationConfig(), "test");
        var result = LowMemoryQuantizer.Run(Fixtures.MicroQwen3, resolved.Pipeline, bfloat16, streamed, recipe: RecipeJson.ToRecipe(resolved.Root),
            layerConfigs: resolved.ByLinear.ToDictionary(kv => kv.Key, kv => RecipeJson.Settings(kv.Value)), calibration: calibration);
        FolderAssert.ByteIdentical(normal, streamed);
        // 4 layers × (7 − v_proj) linears and lm_head.
        Assert.Equal(4 * 6 + 1, result.Reports.Count);
    }

    [ModelFact("tiny-llama")]
    public void UntiedShardedLlamaIsByteIdentical()
    {
        // tiny-llama: an untied lm_head (written as a float tensor after the final norm), a sharded checkpoint, 6 layers.
        string tinyLlama = Fixtures.Model("tiny-llama")!;
        using var dir = Fixtures.NewTempDir();
        string normal = Path.Combine(dir.Path, "normal"), streamed = Path.Combine(dir.Path, "streamed");
        var config = new QuantizationConfig { Method = QuantMethod.Gptq, Weights = Int(4, 128), Gptq = new GptqOptions { ActOrder = true } };
        var calibration = CalibrationData.Windows(Golden.EvalTokens()[..100_000], 4, 64, 7);
        using (var model = CausalLM.Load(tinyLlama, float32, CPU))
        using (var result = LayerwiseQuantizer.Run(model, config, calibration))
            QuantSharpExporter.Write(result, normal);
        LowMemoryQuantizer.Run(tinyLlama, config, float32, streamed, calibration: calibration);
        FolderAssert.ByteIdentical(normal, streamed);
    }

    [Fact]
    public void CliLayerWiseGptqMatchesTheNormalSave()
    {
        using var dir = Fixtures.NewTempDir();
        // A slice of the calibration text: tokenizing all 3.6 MB would dominate the test's time.
        string calib = dir.File("calib.txt");
        File.WriteAllText(calib, File.ReadAllText(Fixtures.CalibText)[..40_000]);
        var report = LowMemoryQuantizerTests.NormalAndLayerWiseCliRuns(dir, ["quantize", "--model", Fixtures.MicroQwen3, "--method", "gptq",
            "--format", "int", "--w-bits", "4", "--w-group-size", "64", "--asym", "--quantization-order", "activation", "--device", "cpu",
            "--quiet", "--export", "quantsharp", "--calib", calib, "--num-sequences", "4", "--seq-len", "32"]);
        Assert.Equal("gptq", (string?)report["method"]);
        Assert.Equal(4, (int)report["num_sequences"]!);
        Assert.Equal(28, report["layers"]!.AsArray().Count);
        // GPTQ's working set is estimated before the run, as in the normal mode (one layer in place of the model).
        Assert.True((long)report["estimated_peak_cpu_bytes"]! > (long)report["memory_estimate_parts"]!["solve"]!);
    }

    [Theory]
    [InlineData("awq")]
    [InlineData("teq")]
    [InlineData("autoround")]
    public void BlockAlgorithmsAreRefusedNamingTheSupportedMethods(string method)
    {
        var recipe = RecipeJson.Parse(JsonNode.Parse("{\"" + method + "\": {\"global\": {\"bits\": 4}}}"), "test");
        var resolved = ResolvedRecipe.Resolve(ModelConfig.Load(Fixtures.MicroQwen3), recipe, new QuantizationConfig(), "test");
        var e = Assert.Throws<QuantSharpException>(() => LowMemoryQuantizer.Check(resolved.Pipeline));
        Assert.Equal($"--layer-wise: {method} optimises a whole decoder block against its float outputs, which the low-memory mode " +
                     "does not run; it supports rtn, hqq and gptq.", e.Message);
    }

    [Theory]
    [InlineData(new[] { "--method", "awq", "--w-bits", "4" }, "--layer-wise: awq optimises a whole decoder block")]
    [InlineData(new[] { "--method", "gptq", "--w-bits", "4", "--a-bits", "4", "--format", "nvfp" }, "--layer-wise: activation quantization (--a-bits 4) is not supported")]
    [InlineData(new[] { "--method", "gptq", "--w-bits", "4", "--transform", "hadamard" }, "--layer-wise: rotations (--transform) are not supported")]
    [InlineData(new[] { "--method", "gptq", "--w-bits", "4", "--calib", "no-such-calib.txt" }, "--calib no-such-calib.txt")]
    public void CliRefusesWhatTheLowMemoryModeCannotDo(string[] flags, string expected)
    {
        using var dir = Fixtures.NewTempDir();
        string outDir = Path.Combine(dir.Path, "q");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, .. flags, "--layer-wise", "--save", outDir, "--quiet"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, r.StdErr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void GptqWithoutCalibrationDataIsRefused()
    {
        using var dir = Fixtures.NewTempDir();
        var config = new QuantizationConfig { Method = QuantMethod.Gptq, Weights = Int(4, 64) };
        var e = Assert.Throws<QuantSharpException>(() => LowMemoryQuantizer.Run(Fixtures.MicroQwen3, config, float32, Path.Combine(dir.Path, "q")));
        Assert.Contains("--layer-wise with gptq needs calibration data (--calib FILE)", e.Message);
    }
}
