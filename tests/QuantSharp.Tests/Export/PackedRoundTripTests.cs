using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Export;
using QuantSharp.Models;
using QuantSharp.Models.Packed;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export;

/// <summary>
/// Every packed format on micro-qwen3: quantize in memory, export, load the folder the way eval does, and compare
/// weights and perplexity with the fake-quantized in-memory model (±0.1%).
/// </summary>
public class PackedRoundTripTests
{
    private static double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 256, maxWindows: 8, batchSize: 4).Perplexity;

    private static int[][] Calibration() => CalibrationData.Windows(Golden.EvalTokens()[..100_000], 8, 128, 42);

    public static QuantizationConfig Recipe(string name) => name switch
    {
        "nvfp4-w4a4-had16" => new() { Weights = QuantSpec.NvFp4(), Activations = QuantSpec.NvFp4(), Transform = TransformKind.Hadamard, TransformGroupSize = 16 },
        "mxfp4-w4a4-had32" => new() { Weights = QuantSpec.MxFp4(), Activations = QuantSpec.MxFp4(), Transform = TransformKind.Hadamard, TransformGroupSize = 32 },
        "nvfp4-w4a4" => new() { Weights = QuantSpec.NvFp4(), Activations = QuantSpec.NvFp4(), FuseGlobalScale = true },
        "nvfp4-w4a16" => new() { Weights = QuantSpec.NvFp4() },
        "int4-sym-g64" => new() { Weights = QuantSpec.Int(4, 64) },
        "int4-asym-g64" => new() { Weights = QuantSpec.Int(4, 64, symmetric: false) },
        "int8-asym-channel" => new() { Weights = QuantSpec.Int(8, QuantSpec.PerChannel, symmetric: false) },
        "int2-sym-g32" => new() { Weights = QuantSpec.Int(2, 32) },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData("fp-quant", "nvfp4-w4a4-had16", true)]
    [InlineData("fp-quant", "mxfp4-w4a4-had32", true)]
    [InlineData("fp-quant-pseudoquant", "nvfp4-w4a4-had16", true)]
    [InlineData("compressed-tensors-nvfp4", "nvfp4-w4a4", true)]
    [InlineData("compressed-tensors-nvfp4", "nvfp4-w4a16", true)]
    [InlineData("compressed-tensors", "int4-sym-g64", true)]
    [InlineData("compressed-tensors", "int8-asym-channel", true)]
    [InlineData("gptq", "int4-sym-g64", false)]
    [InlineData("gptq", "int2-sym-g32", false)]
    [InlineData("gptq-v2", "int4-asym-g64", false)]
    [InlineData("awq", "int4-asym-g64", false)]
    public void PackedExportReloadsToTheInMemoryModel(string format, string recipe, bool exactWeights)
    {
        using var dir = Fixtures.NewTempDir();
        string outDir = Path.Combine(dir.Path, "packed");
        var config = Recipe(recipe);
        double inMemory;
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, config, config.NeedsCalibration ? Calibration() : null);
        inMemory = Ppl(model);
        PackedExporter.Write(result, PackedExporter.Parse(format, "--to"), outDir, overwrite: false);

        using var loaded = OnlineQuantization.Load(outDir, float32, CPU);
        Assert.Equal(config.Activations is null ? 0 : 4, loaded.Online.Count);
        foreach (var (a, b) in model.Layers.Zip(loaded.Model.Layers))
            foreach (var ((name, la), (_, lb)) in a.Linears().Zip(b.Linears()))
            {
                if (exactWeights) Assert.True(la.Weight.eq(lb.Weight).all().item<bool>(), $"{format}: layer {a.Index} {name} differs");
                // float16 scales (GPTQ, AWQ) change a weight by at most its scale's rounding: 2^-11 relative.
                else Assert.True(la.Weight.allclose(lb.Weight, rtol: 1e-3, atol: 1e-6), $"{format}: layer {a.Index} {name} differs");
            }
        double reloaded = Ppl(loaded.Model);
        Assert.True(Math.Abs(reloaded / inMemory - 1) < 1e-3, $"{format}/{recipe}: reloaded {reloaded:F4} vs in-memory {inMemory:F4}");
        Assert.False(File.Exists(Path.Combine(outDir, PseudoQuantExporter.WeightParamsFile)));
        Assert.True(File.Exists(Path.Combine(outDir, "tokenizer.json")));
    }

    [Fact]
    public void APseudoquantFolderExportsToTheSameCheckpointAsTheInMemoryRun()
    {
        using var dir = Fixtures.NewTempDir();
        var config = Recipe("nvfp4-w4a4-had16");
        var calib = Calibration();
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            using var result = LayerwiseQuantizer.Run(model, config, calib);
            PackedExporter.Write(result, ExportFormat.FpQuant, dir.File("direct"), false);
            PackedExporter.Write(result, ExportFormat.PseudoQuant, dir.File("pseudo"), false);
        }
        Assert.True(File.Exists(Path.Combine(dir.File("pseudo"), PseudoQuantExporter.WeightParamsFile)));
        using (var source = PseudoQuantSource.Load(dir.File("pseudo"), float32, CPU))
            PackedExporter.Write(source.Result, ExportFormat.FpQuant, dir.File("via-pseudo"), false);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir.File("direct"), "model.safetensors")),
                     File.ReadAllBytes(Path.Combine(dir.File("via-pseudo"), "model.safetensors")));
    }

    [Fact]
    public void TiedEmbeddingsAreWrittenOnce()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        Assert.True(model.Config.TieWordEmbeddings);
        using var result = LayerwiseQuantizer.Run(model, Recipe("int4-sym-g64"), null);
        PackedExporter.Write(result, ExportFormat.Gptq, dir.File("g"), false);
        using var ckpt = QuantSharp.IO.SafetensorsCheckpoint.Open(dir.File("g"));
        Assert.DoesNotContain("lm_head.weight", ckpt.Names);
        Assert.DoesNotContain(ckpt.Names, n => n.StartsWith("model.layers.0.self_attn.q_proj.weight", StringComparison.Ordinal));
    }

    [Fact]
    public void WeightOnlyPackedFoldersLoadAsPlainModelsAndW4A4OnesRefuseTo()
    {
        using var dir = Fixtures.NewTempDir();
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            using var result = LayerwiseQuantizer.Run(model, Recipe("int4-asym-g64"), null);
            PackedExporter.Write(result, ExportFormat.Awq, dir.File("awq"), false);
        }
        using (var plain = CausalLM.Load(dir.File("awq"), float32, CPU))
        using (var loaded = OnlineQuantization.Load(dir.File("awq"), float32, CPU))
            Assert.True(plain.Layers[3].Mlp.DownProj.Weight.eq(loaded.Model.Layers[3].Mlp.DownProj.Weight).all().item<bool>());

        var config = Recipe("mxfp4-w4a4-had32");
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            using var result = LayerwiseQuantizer.Run(model, config, null);
            PackedExporter.Write(result, ExportFormat.FpQuant, dir.File("fpq"), false);
        }
        var e = Assert.Throws<QuantSharpException>(() => CausalLM.Load(dir.File("fpq"), float32, CPU));
        Assert.Contains("OnlineQuantization.Load", e.Message);
    }
}
