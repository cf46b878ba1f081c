using QuantSharp.Eval;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Eval;

public class PerplexityTests
{
    [Fact]
    public void First64WindowsMatchTransformersOnTheEmbeddedModel() => First64WindowsMatchTransformers("micro-qwen3");

    [ModelTheory("tiny-llama", "tiny-qwen3")]
    [InlineData("tiny-llama")]
    [InlineData("tiny-qwen3")]
    public void First64WindowsMatchTransformers(string name)
    {
        string dir = Fixtures.Model(name)!;
        double expected = Golden.Reference(dir, "eval_a_ppl_seq512_first64windows");
        using var model = CausalLM.Load(dir, float32, CPU);
        var r = PerplexityEvaluator.Evaluate(model, Golden.EvalTokens(), 512, maxWindows: 64, batchSize: 4);
        Assert.Equal(64, r.Windows);
        Assert.Equal(64 * 512, r.Tokens);
        double rel = Math.Abs(r.Perplexity / expected - 1);
        Assert.True(rel <= 5e-4, $"{name}: perplexity {r.Perplexity:F5} vs transformers {expected:F5} ({rel:P4} off, limit 0.05%)");
    }

    [Fact]
    public void BatchingDoesNotChangeTheResult()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var ids = Golden.EvalTokens();
        var one = PerplexityEvaluator.Evaluate(model, ids, 128, maxWindows: 6, batchSize: 1);
        var three = PerplexityEvaluator.Evaluate(model, ids, 128, maxWindows: 6, batchSize: 4);
        Assert.Equal(one.Perplexity, three.Perplexity, 1e-4);
    }

    [Fact]
    public void WindowCountDropsTheRemainder()
    {
        Assert.Equal(1026, PerplexityEvaluator.WindowCount(525_770, 512, null));
        Assert.Equal(64, PerplexityEvaluator.WindowCount(525_770, 512, 64));
        Assert.Equal(513, PerplexityEvaluator.WindowCount(525_770, 1024, null));
    }

    [Fact]
    public void TooShortTextIsAClearError()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var e = Assert.Throws<QuantSharpException>(() => PerplexityEvaluator.Evaluate(model, new int[100], 512));
        Assert.Contains("--seq-len 512", e.Message);
    }
}
