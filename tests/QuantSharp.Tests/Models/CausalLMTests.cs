using QuantSharp.IO;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Models;

public class CausalLMTests
{
    [Fact]
    public void Fp32LogitsMatchTransformersOnTheEmbeddedModel() => Fp32LogitsMatchTransformers("micro-qwen3");

    [ModelTheory("tiny-llama", "tiny-qwen3")]
    [InlineData("tiny-llama")]
    [InlineData("tiny-qwen3")]
    public void Fp32LogitsMatchTransformers(string name)
    {
        string dir = Fixtures.Model(name)!;
        using var scope = NewDisposeScope();
        using var model = CausalLM.Load(dir, float32, CPU);
        var (ids, expected) = Golden.ReferenceLogits(dir);
        using var _ = no_grad();
        var logits = model.Forward(ids.unsqueeze(0), null)[0];
        double maxDiff = (logits - expected).abs().max().item<float>();
        Assert.True(maxDiff <= 1e-3, $"{name}: max |logits − transformers| = {maxDiff:E3} > 1e-3");
    }

    [Fact]
    public void ParameterNamesMatchTheCheckpoint()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var ckpt = SafetensorsCheckpoint.Open(Fixtures.MicroQwen3);
        var ours = model.StateDict().Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        var theirs = ckpt.Names.Where(n => n != "lm_head.weight").OrderBy(n => n, StringComparer.Ordinal).ToArray();
        Assert.Equal(theirs, ours);
        Assert.Equal(ckpt.Names.Where(n => n != "lm_head.weight").Sum(n => ckpt.GetInfo(n).Shape.Aggregate(1L, (a, b) => a * b)), model.ParameterCount());
    }

    [Fact]
    public void CachedDecodingEqualsFullRecompute()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        int[] prompt = Golden.EvalTokens().Take(12).ToArray();
        int[] generated = TextGenerator.Generate(model, prompt, new GenerationOptions(MaxNewTokens: 8));
        Assert.Equal(8, generated.Length);
        // Greedy without a cache: recompute the whole sequence each step.
        var seq = prompt.ToList();
        using var _ = no_grad();
        for (int i = 0; i < 8; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(tensor(seq.Select(t => (long)t).ToArray(), [1, seq.Count], int64), null);
            int next = (int)logits[0, -1].argmax().item<long>();
            Assert.Equal(next, generated[i]);
            seq.Add(next);
        }
    }

    [Fact]
    public void SamplingIsSeededAndTinyTopPIsGreedy()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        int[] prompt = Golden.EvalTokens().Take(10).ToArray();
        int[] greedy = TextGenerator.Generate(model, prompt, new GenerationOptions(MaxNewTokens: 6));
        int[] nucleus = TextGenerator.Generate(model, prompt, new GenerationOptions(MaxNewTokens: 6, Temperature: 1.0, TopP: 1e-6, Seed: 3));
        Assert.Equal(greedy, nucleus);
        int[] a = TextGenerator.Generate(model, prompt, new GenerationOptions(MaxNewTokens: 12, Temperature: 1.5, Seed: 11));
        int[] b = TextGenerator.Generate(model, prompt, new GenerationOptions(MaxNewTokens: 12, Temperature: 1.5, Seed: 11));
        Assert.Equal(a, b);
        Assert.All(a, t => Assert.InRange(t, 0, model.Config.VocabSize - 1));
    }

    [Fact]
    public void Bf16ForwardIsCloseToFp32()
    {
        var (ids, expected) = Golden.ReferenceLogits(Fixtures.MicroQwen3);
        using var model = CausalLM.Load(Fixtures.MicroQwen3, bfloat16, CPU);
        using var _ = no_grad();
        var logits = model.Forward(ids.unsqueeze(0), null)[0].to(float32);
        double rel = ((logits - expected).norm() / expected.norm()).item<float>();
        Assert.True(rel < 0.02, $"bf16 relative logit error {rel:F4}");
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var dir = Fixtures.NewTempDir();
        File.Copy(Path.Combine(Fixtures.MicroQwen3, "config.json"), dir.File("config.json"));
        using (var src = SafetensorsFile.Open(Path.Combine(Fixtures.MicroQwen3, "model.safetensors")))
        {
            var keep = src.Names.Where(n => n != "model.layers.2.mlp.up_proj.weight").ToList();
            SafetensorsWriter.Write(dir.File("model.safetensors"), keep.Select(n => new KeyValuePair<string, Tensor>(n, src.Read(n))));
        }
        var e = Assert.Throws<InvalidFileException>(() => CausalLM.Load(dir.Path, float32, CPU));
        Assert.Contains("model.layers.2.mlp.up_proj.weight", e.Message);
    }

    [Fact]
    public void NaNWeightIsRejectedWithItsName()
    {
        using var dir = Fixtures.NewTempDir();
        File.Copy(Path.Combine(Fixtures.MicroQwen3, "config.json"), dir.File("config.json"));
        using (var src = SafetensorsFile.Open(Path.Combine(Fixtures.MicroQwen3, "model.safetensors")))
        {
            SafetensorsWriter.Write(dir.File("model.safetensors"), src.Names.Select(n =>
            {
                var t = src.Read(n);
                if (n == "model.layers.1.self_attn.k_proj.weight") t[0, 0] = tensor(float.NaN).to(t.dtype);
                return new KeyValuePair<string, Tensor>(n, t);
            }));
        }
        var e = Assert.Throws<InvalidFileException>(() => CausalLM.Load(dir.Path, float32, CPU));
        Assert.Contains("model.layers.1.self_attn.k_proj.weight", e.Message);
        Assert.Contains("NaN", e.Message);
    }
}
