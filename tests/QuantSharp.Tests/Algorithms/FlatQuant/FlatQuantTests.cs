using QuantSharp.Algorithms.FlatQuant;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Export;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms.FlatQuant;

public class FlatQuantTests
{
    private static readonly FlatQuantOptions W4A4KV4 = new()
    {
        Lwc = true, Lac = true, AddDiag = true, Epochs = 1, BatchSize = 2, NumSequences = 2, SeqLen = 32,
    };

    /// <summary>A small random Llama or Qwen2 (hidden 96 = 8×12, ffn 160 = 10×16, 6 heads of 16, 2 KV heads; Qwen2 has q/k/v biases).</summary>
    private static string TinyRandom(string modelType = "llama")
    {
        string dir = Path.Combine(Path.GetTempPath(), $"quantsharp-flatquant-{modelType}");
        if (!File.Exists(Path.Combine(dir, "config.json")))
            SyntheticModel.Write(new ModelShape("t", modelType, 96, 160, 2, 6, 2, 16, 256, 10000, false, false), dir, seed: 3);
        return dir;
    }

    /// <summary>Moves every trained parameter away from its init, as training would, so folding is really exercised.</summary>
    private static void Perturb(FlatQuantLayer flat, long seed)
    {
        using var _ = no_grad();
        var gen = new TorchSharp.torch.Generator((ulong)seed, CPU);
        foreach (var (name, p) in flat.NamedParameters())
        {
            var noise = randn(p.shape, float32, generator: gen);
            if (name.EndsWith(".diag")) p.mul_(noise.mul(0.3).exp());
            else if (name.Contains("lwc") || name.Contains("lac")) p.add_(noise.mul(0.5).sub(2.0));
            else p.add_(noise.mul(0.05));
        }
    }

    [Theory]
    [InlineData("qwen3", TransformParameterization.Svd)]
    [InlineData("llama", TransformParameterization.Svd)]
    [InlineData("qwen2", TransformParameterization.Svd)]
    [InlineData("qwen3", TransformParameterization.DirectInverse)]
    [InlineData("llama", TransformParameterization.DirectInverse)]
    public void ReparameterisedModelEqualsTheUnmergedTrainedModel(string family, TransformParameterization form)
    {
        string dir = family == "qwen3" ? Fixtures.MicroQwen3 : TinyRandom(family);
        using var model = CausalLM.Load(dir, float32, CPU);
        var options = W4A4KV4 with { HalfPrecisionOnline = false, Parameterization = form };
        var ids = tensor(Enumerable.Range(0, 48).Select(i => (long)((i * 37 + 5) % 200)).ToArray(), [1, 48], int64);
        var (cos, sin) = model.Rotary(0, 48);
        using var _ = no_grad();
        var h = model.EmbedTokens.forward(ids);
        var layers = new List<FlatQuantLayer>();
        var states = new List<FlatQuantOnline>();
        foreach (var layer in model.Layers)
        {
            var flat = new FlatQuantLayer(layer, model.Config, options, CPU);
            Perturb(flat, 100 + layer.Index);
            h = flat.Forward(h, cos, sin, quantize: false);
            layers.Add(flat);
        }
        var expected = model.Logits(model.Norm.forward(h));
        foreach (var (flat, layer) in layers.Zip(model.Layers))
        {
            var (online, merged) = flat.Reparameterize(FlatQuantCalibrator.RuntimeOf(model.Config, options));
            foreach (var t in merged.Values) t.Dispose();
            // Before quantization noise: the same online transforms, no activation or KV quantizers.
            foreach (var (_, linear) in layer.Linears()) linear.InputQuantizer = null;
            layer.SelfAttn.KvHook = new KvCacheHook(new KvCacheSpec(16, 16), model.Config.HeadDim, online.Tensors["k_cache.transform"]);
            states.Add(online);
        }
        var actual = model.Forward(ids, null);
        double rel = ((actual - expected).abs().max() / expected.abs().max()).item<float>();
        Assert.True(rel < 1e-3, $"{family} {form}: relative logit difference {rel:E2}");
        // The weights really changed (transforms and clipping folded in).
        using var plain = CausalLM.Load(dir, float32, CPU);
        Assert.False(plain.Layers[0].Mlp.DownProj.Weight.allclose(model.Layers[0].Mlp.DownProj.Weight, rtol: 1e-2, atol: 1e-3));
        foreach (var s in states) s.Dispose();
        foreach (var l in layers) l.Dispose();
    }

    [Fact]
    public void KvQuantizedAttentionEqualsFloatAttentionAt16Bits()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        int hd = model.Config.HeadDim;
        var ids = tensor(Enumerable.Range(0, 40).Select(i => (long)((i * 11 + 3) % 300)).ToArray(), [1, 40], int64);
        using var _ = no_grad();
        var reference = model.Forward(ids, null);
        var key = TransformMatrix.RandomOrthogonal(hd, 5) + eye(hd) * 0.3;   // invertible, not orthogonal
        var rotation = TransformMatrix.RandomOrthogonal(hd, 6);
        foreach (var layer in model.Layers)
            layer.SelfAttn.KvHook = new KvCacheHook(new KvCacheSpec(16, 16), hd, key, rotation);
        var sixteen = model.Forward(ids, null);
        double rel16 = ((sixteen - reference).abs().max() / reference.abs().max()).item<float>();
        Assert.True(rel16 < 1e-4, $"16-bit KV with transforms: relative difference {rel16:E2}");

        foreach (var layer in model.Layers)
            layer.SelfAttn.KvHook = new KvCacheHook(new KvCacheSpec(4, 4, 128, true), hd);
        var four = model.Forward(ids, null);
        double rel4 = ((four - reference).abs().max() / reference.abs().max()).item<float>();
        Assert.True(rel4 > 1e-3, $"4-bit KV must change the logits (relative difference {rel4:E2})");
    }

    [Theory]
    [InlineData(TransformParameterization.Svd)]
    [InlineData(TransformParameterization.DirectInverse)]
    public void LwcAndLacGradientsAreNonZeroAndFinite(TransformParameterization form)
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var layer = model.Layers[1];
        using var flat = new FlatQuantLayer(layer, model.Config, W4A4KV4 with { Parameterization = form }, CPU);
        var ids = tensor(Enumerable.Range(0, 32).Select(i => (long)((i * 13 + 1) % 400)).ToArray(), [1, 32], int64);
        var (cos, sin) = model.Rotary(0, 32);
        Tensor x, target;
        using (no_grad())
        {
            x = model.EmbedTokens.forward(ids);
            target = layer.Forward(x, cos, sin);
        }
        var loss = nn.functional.mse_loss(flat.Forward(x, cos, sin, quantize: true), target);
        loss.backward();
        var named = flat.NamedParameters();
        var clips = named.Where(kv => kv.Key.Contains("lwc") || kv.Key.Contains("lac")).ToList();
        Assert.Contains(clips, kv => kv.Key == "k_cache.lac_max");
        Assert.Contains(clips, kv => kv.Key == "self_attn.o_proj.lwc_min");
        foreach (var (name, p) in clips)
        {
            var g = p.grad;
            Assert.NotNull(g);
            Assert.True(g!.isfinite().all().item<bool>(), $"{name}: non-finite gradient");
            Assert.True(g.abs().sum().item<float>() > 0, $"{name}: zero gradient");
        }
        // Every transform tensor learns: the direct matrices, or U's and V's raw parameters and σ of the SVD form.
        foreach (var prefix in new[] { "qkv.left", "down.diag", "o.heads", "k_cache.transform" })
        {
            var members = named.Where(kv => kv.Key == prefix || kv.Key.StartsWith(prefix + ".")).ToList();
            Assert.Equal(form == TransformParameterization.Svd && prefix != "down.diag" ? 3 : 1, members.Count);
            foreach (var (name, p) in members)
            {
                Assert.True(p.grad!.isfinite().all().item<bool>(), $"{name}: non-finite gradient");
                Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name}: zero gradient");
            }
        }
    }

    [Fact]
    public void TrainingLowersTheLayerLossAndTheInt4ExportEvaluatesLikeTheFakeQuantizedModel()
    {
        var ids = Golden.EvalTokens();
        int[][] calib = CalibrationData.Windows(ids[..100_000], 4, 64, 42);
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var options = W4A4KV4 with { Epochs = 2, NumSequences = 4, SeqLen = 64, BatchSize = 2, LearningRate = 5e-3 };
        using var result = FlatQuantCalibrator.Run(model, options, calib);
        Assert.All(result.Reports, r => Assert.True(r.LastLoss < r.FirstLoss, $"layer {r.Layer}: loss {r.FirstLoss:E3} → {r.LastLoss:E3}"));
        double fake = PerplexityEvaluator.Evaluate(model, ids, 128, maxWindows: 4, batchSize: 4).Perplexity;

        string dir = Path.Combine(Path.GetTempPath(), "quantsharp-flatquant-export-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            FlatQuantInt4Exporter.Write(result, dir, overwrite: false);
            using (var f = QuantSharp.IO.SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            {
                var q = f.GetInfo("model.layers.0.self_attn.q_proj.qweight");
                Assert.Equal(new long[] { 256, 128 }, q.Shape);
                Assert.False(f.Contains("model.layers.0.self_attn.q_proj.weight"));
                Assert.Equal(QuantSharp.IO.SafeDType.F16, f.GetInfo("model.layers.0.flatquant.qkv.left").DType);
            }
            using var loaded = OnlineQuantization.Load(dir, float32, CPU);
            double real = PerplexityEvaluator.Evaluate(loaded.Model, ids, 128, maxWindows: 4, batchSize: 4).Perplexity;
            Assert.True(Math.Abs(real / fake - 1) < 0.005, $"export {real:F4} vs fake-quant {fake:F4}");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void KvBitsWithoutWeightOrActivationBitsAreRefused()
    {
        var config = ModelConfig.Load(Fixtures.MicroQwen3);
        var e = Assert.Throws<QuantSharpException>(() => (W4A4KV4 with { WBits = 16, ABits = 16 }).Validate(config));
        Assert.Contains("--k-bits/--v-bits", e.Message);
        var e2 = Assert.Throws<QuantSharpException>(() => new QuantizationConfig { KvCache = new KvCacheSpec(4, 4) }.Validate());
        Assert.Contains("--k-bits/--v-bits", e2.Message);
    }

    [Fact]
    public void HeadMixingOnHeadsThatDoNotDivideIsRefused()
    {
        string dir = Path.Combine(Path.GetTempPath(), "quantsharp-flatquant-heads-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), """
                {"model_type": "llama", "hidden_size": 100, "intermediate_size": 256, "num_hidden_layers": 1,
                 "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 32, "rms_norm_eps": 1e-5}
                """);
            var config = ModelConfig.Load(dir);
            var e = Assert.Throws<QuantSharpException>(() => W4A4KV4.Validate(config));
            Assert.Contains("8 heads do not divide hidden_size 100", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void ResumeFolderFromAnotherModelIsRefused()
    {
        string dir = Path.Combine(Path.GetTempPath(), "quantsharp-flatquant-resume-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            using (var micro = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
                FlatQuantResume.Open(dir, micro, W4A4KV4, 32, 2);
            using var llama = CausalLM.Load(TinyRandom(), float32, CPU);
            var e = Assert.Throws<QuantSharpException>(() => FlatQuantResume.Open(dir, llama, W4A4KV4, 32, 2));
            Assert.Contains("written for another model or recipe", e.Message);
            Assert.Contains("model_type", e.Message);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ResumeContinuesFromSavedLayersWithTheSameResult()
    {
        var ids = Golden.EvalTokens();
        int[][] calib = CalibrationData.Windows(ids[..100_000], 2, 32, 7);
        string dir = Path.Combine(Path.GetTempPath(), "quantsharp-flatquant-resume-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var options = W4A4KV4 with { ResumeDir = dir };
            Tensor first;
            using (var a = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
            using (FlatQuantCalibrator.Run(a, options, calib))
                first = a.Forward(tensor(new long[] { 5, 6, 7, 8 }, [1, 4], int64), null).detach().clone();
            Assert.Equal(4, Directory.GetFiles(dir, "layer-*.safetensors").Length);
            File.Delete(Path.Combine(dir, "layer-3.safetensors"));   // as if the run had crashed in the last layer
            using var b = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
            using var resumed = FlatQuantCalibrator.Run(b, options, calib);
            Assert.Equal([true, true, true, false], resumed.Reports.Select(r => r.Resumed));
            var second = b.Forward(tensor(new long[] { 5, 6, 7, 8 }, [1, 4], int64), null);
            Assert.True(first.allclose(second, rtol: 1e-4, atol: 1e-4));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void SvdFormIsOrthogonalTimesDiagonalAndItsInverseIsExact()
    {
        using var scope = NewDisposeScope();
        using var m = new TransformMatrix(24, seed: 7, CPU, TransformParameterization.Svd);
        using (no_grad())
        {
            var gen = new TorchSharp.torch.Generator(11, CPU);
            foreach (var (_, p) in m.Named()) p.add_(randn(p.shape, float32, generator: gen).mul(0.1));
        }
        var (_, u) = m.Named().First(n => n.Suffix == ".u");
        Tensor q = TransformMatrix.Cayley(u);
        Assert.True(q.matmul(q.t()).allclose(eye(24), atol: 1e-5), "Cayley(X) is not orthogonal");
        Tensor product = m.Matrix().matmul(m.InverseTranspose().t());
        Assert.True(product.allclose(eye(24), atol: 1e-4), "M · (M⁻ᵀ)ᵀ is not the identity");
        // Freezing keeps the value and switches the inverse to an exact float64 solve of the frozen matrix.
        Tensor before = m.Matrix().detach().clone();
        m.Freeze(t => t);
        Assert.True(m.Matrix().allclose(before, atol: 1e-6));
        Assert.Empty(m.Parameters);
        Assert.True(m.Matrix().matmul(m.InverseTranspose().t()).allclose(eye(24), atol: 1e-4));
    }
}
