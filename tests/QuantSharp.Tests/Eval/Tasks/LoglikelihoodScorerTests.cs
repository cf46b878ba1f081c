using QuantSharp.Eval.Tasks;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Eval.Tasks;

public class LoglikelihoodScorerTests
{
    /// <summary>Reference: one plain forward over context + continuation, no cache, no batching.</summary>
    private static (double LogLik, bool Greedy) PlainForward(CausalLM model, EncodedRequest r)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int[] full = [.. r.Context, .. r.Continuation];
        var input = tensor(full[..^1].Select(t => (long)t).ToArray(), [1, full.Length - 1], int64);
        var logProbs = nn.functional.log_softmax(model.forward(input)[0].to(float64), 1);
        double sum = 0;
        bool greedy = true;
        for (int j = 0; j < r.Continuation.Length; j++)
        {
            int pos = r.Context.Length - 1 + j;
            sum += logProbs[pos, r.Continuation[j]].item<double>();
            greedy &= logProbs[pos].argmax().item<long>() == r.Continuation[j];
        }
        return (sum, greedy);
    }

    [Fact]
    public void SharedContextChoicesEqualTheSumOfTokenLogProbsOfAPlainForward()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var encoder = new RequestEncoder(BpeTokenizer.FromDirectory(Fixtures.MicroQwen3));
        string context = "The state of our Union is strong. Tonight I ask the Congress to";
        var requests = new[] { " act.", " pass a budget that creates jobs and cuts the deficit.", " ask", " swim with the whale" }
            .Select(c => encoder.Encode(new LoglikelihoodRequest(context, c))).ToList();
        var scores = new LoglikelihoodScorer(model).Score(requests);
        for (int i = 0; i < requests.Count; i++)
        {
            var (expected, greedy) = PlainForward(model, requests[i]);
            Assert.True(Math.Abs(scores[i].LogLikelihood - expected) <= 1e-5, $"choice {i}: {scores[i].LogLikelihood} vs plain {expected}");
            Assert.Equal(greedy, scores[i].IsGreedy);
            Assert.Equal(requests[i].Continuation.Length, scores[i].Tokens);
        }
    }

    [Fact]
    public void DifferentContextsWithOneContinuationEqualPlainForwards()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var encoder = new RequestEncoder(BpeTokenizer.FromDirectory(Fixtures.MicroQwen3));
        var requests = new[] { "The trophy does not fit in the suitcase because the trophy", "The trophy does not fit in the suitcase because the suitcase" }
            .Select(c => encoder.Encode(new LoglikelihoodRequest(c, " is too big."))).ToList();
        var scores = new LoglikelihoodScorer(model).Score(requests);
        for (int i = 0; i < requests.Count; i++)
            Assert.True(Math.Abs(scores[i].LogLikelihood - PlainForward(model, requests[i]).LogLik) <= 1e-5, $"context {i}");
    }

    [Fact]
    public void TrailingContextSpaceMovesToTheContinuation()
    {
        var tokenizer = BpeTokenizer.FromDirectory(Fixtures.MicroQwen3);
        var encoder = new RequestEncoder(tokenizer);
        var withSpace = encoder.Encode(new LoglikelihoodRequest("Call me ", "Ishmael"));
        var moved = encoder.Encode(new LoglikelihoodRequest("Call me", " Ishmael"));
        Assert.Equal(moved.Context, withSpace.Context);
        Assert.Equal(moved.Continuation, withSpace.Continuation);
        Assert.Equal(tokenizer.Encode("Call me"), withSpace.Context);
        Assert.Equal(tokenizer.Encode("Call me Ishmael")[withSpace.Context.Length..], withSpace.Continuation);
        // An empty context is conditioned on one prefix token (BOS here).
        var empty = encoder.Encode(new LoglikelihoodRequest("", "Call"));
        Assert.Equal([tokenizer.BosTokenId!.Value], empty.Context);
    }

    [Fact]
    public void ContextsLongerThanTheWindowLoseTokensOnTheLeft()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var encoder = new RequestEncoder(BpeTokenizer.FromDirectory(Fixtures.MicroQwen3));
        var r = encoder.Encode(new LoglikelihoodRequest("one two three four five six seven eight nine ten", " eleven"));
        var scorer = new LoglikelihoodScorer(model, maxLength: 6);
        double truncated = scorer.Score([r])[0].LogLikelihood;
        int[] full = [.. r.Context, .. r.Continuation];
        int keep = 7 - r.Continuation.Length; // window 6 + the last token, which is not fed
        var manual = new EncodedRequest(r.Context[^keep..], r.Continuation);
        Assert.True(Math.Abs(truncated - PlainForward(model, manual).LogLik) <= 1e-5);
    }
}
