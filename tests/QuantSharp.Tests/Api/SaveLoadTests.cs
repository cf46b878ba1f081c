using System.Text.Json.Nodes;
using QuantSharp.Api;
using QuantSharp.Eval;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Calibration;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Api;

public class SaveLoadTests
{
    private static CausalLM Micro() => CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);

    private static double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 256, maxWindows: 8, batchSize: 4).Perplexity;

    private static void AssertSameWeights(CausalLM a, CausalLM b)
    {
        var bw = b.StateDict().ToDictionary(x => x.Name, x => x.Tensor);
        foreach (var (name, t) in a.StateDict())
        {
            Assert.Equal(t.shape, bw[name].shape);
            Assert.True(t.eq(bw[name]).all().item<bool>(), name);
        }
    }

    [Theory]
    [InlineData("""{"rtn": {"global": {"bits": 3, "group_size": 64, "use_sym": false}}}""")]
    [InlineData("""{"rtn": {"global": {"bits": 4, "group_size": 32, "use_sym": true, "quant_lm_head": true}, "local": {"down_proj": {"bits": 5}, "v_proj": {"bits": 2, "group_size": -1}}}}""")]
    [InlineData("""{"gptq": {"global": {"bits": 4, "group_size": 128, "use_sym": false, "static_groups": true, "act_order": true}}, "rtn": {"local": {"mlp": {"bits": 8}, "o_proj": {"dtype": "fp4_e2m1", "group_size": 32}, "v_proj": {"bits": 8}}}}""")]
    [InlineData("""{"rtn": {"global": {"dtype": "nf4", "group_size": 64, "use_double_quant": true}, "local": {"q_proj": {"dtype": "int", "bits": 4, "use_full_range": true}, "down_proj": {"dtype": "int", "bits": 3, "use_sym": false, "group_dim": 0, "group_size": 32}, "k_proj": {"dtype": "fp4", "use_double_quant": false}}}, "hqq": {"local": {"mlp.up_proj": {"bits": 4}}}}""")]
    public void SaveThenLoadGivesBitIdenticalWeightsAndThePerplexity(string recipe)
    {
        using var dir = Fixtures.NewTempDir();
        using var model = Micro();
        var config = RecipeJson.Parse(JsonNode.Parse(recipe), "test");
        var prepared = Quantizer.Prepare(model, config);
        if (prepared.NeedsCalibration) prepared.Calibrate(CalibrationData.Windows(Golden.EvalTokens()[..100_000], 4, 128, 42));
        using var qm = prepared.Convert();
        string outDir = Path.Combine(dir.Path, "q");
        qm.Save(outDir);
        using var loaded = QuantizedModel.Load(outDir);
        AssertSameWeights(model, loaded.Model);
        Assert.Equal(Ppl(model), Ppl(loaded.Model), 6);
        // Decoder linears are stored packed only.
        using var ckpt = SafetensorsCheckpoint.Open(outDir);
        Assert.Contains("model.layers.0.self_attn.q_proj.qweight", ckpt.Names);
        Assert.DoesNotContain("model.layers.0.self_attn.q_proj.weight", ckpt.Names);
        Assert.Equal(config.QuantLmHead, ckpt.Names.Contains("lm_head.qweight"));
    }

    /// <summary>
    /// Issue #12: save → load → eval gives the in-memory model's perplexity (within 0.1%; in fact bit-identical
    /// weights) for every algorithm, the block algorithms included (few iterations and windows: the format, not the
    /// algorithm's quality, is under test).
    /// </summary>
    [Theory]
    [InlineData("""{"rtn": {"global": {"bits": 4, "group_size": 64, "use_sym": false}}}""")]
    [InlineData("""{"gptq": {"global": {"bits": 4, "group_size": 64, "use_sym": false}}}""")]
    [InlineData("""{"awq": {"global": {"bits": 4, "group_size": 64, "use_sym": false}}}""")]
    [InlineData("""{"teq": {"global": {"bits": 4, "group_size": 64, "use_sym": false}}}""")]
    [InlineData("""{"hqq": {"global": {"bits": 4, "group_size": 64}}}""")]
    [InlineData("""{"autoround": {"global": {"bits": 4, "group_size": 64, "use_sym": false, "iters": 4, "nsamples": 4, "batch_size": 2}}}""")]
    public void EveryAlgorithmSavesAndLoadsToTheSamePerplexity(string recipe)
    {
        using var dir = Fixtures.NewTempDir();
        using var model = Micro();
        var config = RecipeJson.Parse(JsonNode.Parse(recipe), "test");
        var pipeline = new QuantSharp.Quantization.QuantizationConfig { Teq = new QuantSharp.Algorithms.Teq.TeqOptions { Steps = 4 }, CalibBatchSize = 2 };
        var prepared = Quantizer.Prepare(model, config, pipeline);
        if (prepared.NeedsCalibration) prepared.Calibrate(CalibrationData.Windows(Golden.EvalTokens()[..100_000], 4, 128, 42));
        using var qm = prepared.Convert();
        double inMemory = Ppl(model);
        string outDir = Path.Combine(dir.Path, "q");
        qm.Save(outDir);
        using var loaded = QuantizedModel.Load(outDir);
        AssertSameWeights(model, loaded.Model);
        double reloaded = Ppl(loaded.Model);
        Assert.InRange(reloaded / inMemory, 0.999, 1.001);
        Assert.Equal(config.Algorithm, loaded.QConfig!["layers"]!["model.layers.1.mlp.down_proj"]!["algorithm"]!.GetValue<string>());
    }

    [Fact]
    public void ALocalLmHeadRuleLeavesItFloatAndQuantizesTheRest()
    {
        using var dir = Fixtures.NewTempDir();
        string recipePath = dir.File("r.json");
        File.WriteAllText(recipePath, """{"rtn": {"global": {"bits": 4, "group_size": 128, "use_sym": false, "quant_lm_head": true}, "local": {"lm_head": {"dtype": "fp32"}}}}""");
        using var model = Micro();
        using var qm = Quantizer.Prepare(model, RecipeJson.Load(recipePath), source: recipePath).Convert();
        string outDir = Path.Combine(dir.Path, "q");
        qm.Save(outDir);

        using var ckpt = SafetensorsCheckpoint.Open(outDir);
        // micro-qwen3 ties lm_head to the embeddings: a float lm_head keeps the tie, so the float table is all there is.
        Assert.DoesNotContain(ckpt.Names, n => n.StartsWith("lm_head", StringComparison.Ordinal));
        using (var embed = ckpt.Read("model.embed_tokens.weight"))
        using (var original = Micro())
            Assert.True(embed.to(float32).eq(original.EmbedTokens.Weight).all().item<bool>());
        foreach (var layer in model.Layers)
            foreach (var (name, _) in layer.Linears())
            {
                string p = $"model.layers.{layer.Index}.{name}";
                Assert.Contains(p + ".qweight", ckpt.Names);
                Assert.Contains(p + ".qzeros", ckpt.Names);
                Assert.Equal(SafeDType.I32, ckpt.GetInfo(p + ".qweight").DType);
            }
        var qconfig = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "qconfig.json")))!;
        Assert.Equal("fp32", qconfig["layers"]!["lm_head"]!["config"]!["dtype"]!.GetValue<string>());
        Assert.Equal(4, qconfig["layers"]!["model.layers.2.mlp.up_proj"]!["storage"]!["bits"]!.GetValue<int>());
        Assert.Equal("rtn", qconfig["recipe"]!.AsObject().Single().Key);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.True(config["tie_word_embeddings"]!.GetValue<bool>());
    }

    [Fact]
    public void QuantizedLmHeadOfATiedModelIsSavedUntied()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = Micro();
        using var qm = Quantizer.Quantize(model, new RtnConfig { Bits = 4, GroupSize = 64, QuantLmHead = true }, null);
        string outDir = Path.Combine(dir.Path, "q");
        qm.Save(outDir);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
        using var loaded = QuantizedModel.Load(outDir);
        Assert.NotNull(loaded.Model.LmHead);
        Assert.True(loaded.Model.LmHeadWeight.eq(model.LmHeadWeight).all().item<bool>());
    }

    [Fact]
    public void ADamagedQconfigIsAnErrorNamingTheFile()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = Micro();
        using var qm = Quantizer.Quantize(model, new RtnConfig { Bits = 4, GroupSize = 64 }, null);
        string outDir = Path.Combine(dir.Path, "q");
        qm.Save(outDir);
        string qconfig = Path.Combine(outDir, "qconfig.json");
        File.WriteAllText(qconfig, File.ReadAllText(qconfig).Replace("\"bits\": 4", "\"bits\": 9"));
        var e = Assert.Throws<QuantSharpException>(() => QuantizedModel.Load(outDir));
        Assert.Contains("qconfig.json", e.Message);
        Assert.Contains("bits 9", e.Message);
    }
}
