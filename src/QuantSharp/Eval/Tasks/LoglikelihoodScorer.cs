using QuantSharp.Models;
using QuantSharp.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Eval.Tasks;

/// <summary>Summed log-probability of a continuation and whether greedy decoding would have produced it.</summary>
public readonly record struct ContinuationScore(double LogLikelihood, bool IsGreedy, int Tokens);

/// <summary>
/// Scores the continuations of one document together. The token prefix every request shares (the question, the
/// few-shot examples) is run once into a KV cache; the cache is broadcast over the requests and their different tails
/// run as one right-padded batch (padding sits after every real token, so the causal mask keeps it out of the scores).
/// Inputs longer than the model's window lose tokens on the left, as in lm-eval.
/// </summary>
public sealed class LoglikelihoodScorer
{
    private readonly CausalLM _model;
    private readonly int _maxLength;

    public LoglikelihoodScorer(CausalLM model, int? maxLength = null)
    {
        _model = model;
        _maxLength = maxLength ?? model.Config.MaxPositionEmbeddings;
    }

    public ContinuationScore[] Score(IReadOnlyList<EncodedRequest> requests)
    {
        int n = requests.Count;
        if (n == 0) return [];
        // The model reads context + continuation without its last token; logits at the last m positions score the m
        // continuation tokens.
        var inputs = new int[n][];
        var targets = new int[n][];
        for (int i = 0; i < n; i++)
        {
            var r = requests[i];
            if (r.Continuation.Length == 0) throw new QuantSharpException("a request has an empty continuation.");
            if (r.Continuation.Length > _maxLength)
                throw new QuantSharpException($"a continuation of {r.Continuation.Length} tokens exceeds the model's {_maxLength}-token window.");
            int[] full = [.. r.Context, .. r.Continuation];
            if (full.Length > _maxLength + 1) full = full[^(_maxLength + 1)..];
            inputs[i] = full[..^1];
            targets[i] = r.Continuation;
        }

        // Shared prefix: common to all inputs and ending before the first scored position of every request.
        int prefix = n == 1 ? 0 : CommonPrefix(inputs);
        for (int i = 0; i < n; i++) prefix = Math.Min(prefix, inputs[i].Length - targets[i].Length);

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var cache = prefix > 0 ? new KvCache(_model.Config.NumLayers) : null;
        if (cache is not null)
        {
            var head = tensor(inputs[0][..prefix].Select(t => (long)t).ToArray(), [1, prefix], int64);
            _model.ForwardHidden(head, cache).Dispose();
            cache.ExpandBatch(n);
        }
        int width = inputs.Max(x => x.Length) - prefix;
        var tail = new long[n * width];
        for (int i = 0; i < n; i++)
            for (int j = prefix; j < inputs[i].Length; j++) tail[i * width + j - prefix] = inputs[i][j];
        var hidden = _model.ForwardHidden(tensor(tail, [n, width], int64), cache);

        var scores = new ContinuationScore[n];
        for (int i = 0; i < n; i++)
        {
            int m = targets[i].Length;
            int start = inputs[i].Length - prefix - m;
            var logProbs = nn.functional.log_softmax(_model.Logits(hidden[i].narrow(0, start, m)).to(float32), 1);
            var target = tensor(targets[i].Select(t => (long)t).ToArray(), int64).to(logProbs.device);
            double ll = logProbs.gather(1, target.unsqueeze(1)).to(float64).sum().item<double>();
            bool greedy = logProbs.argmax(1).eq(target).all().item<bool>();
            scores[i] = new ContinuationScore(ll, greedy, m);
        }
        return scores;
    }

    private static int CommonPrefix(int[][] rows)
    {
        int length = rows.Min(r => r.Length);
        for (int j = 0; j < length; j++)
            for (int i = 1; i < rows.Length; i++)
                if (rows[i][j] != rows[0][j]) return j;
        return length;
    }
}
