using QuantSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Eval;

public sealed record PerplexityResult(double Perplexity, int Windows, long Tokens, double Seconds, double TotalNll)
{
    /// <summary>Tokens whose loss was counted (seq_len − 1 per window).</summary>
    public long PredictedTokens => Windows == 0 ? 0 : Tokens - Windows;
}

/// <summary>
/// Perplexity by the project's protocol: the whole text tokenized once without BOS, cut into non-overlapping windows
/// of seq_len tokens (remainder dropped), each window scored on predicting tokens 2..seq_len, and
/// exp(total NLL / total predicted tokens). Windows are batched; NLL is summed per window in float64.
/// </summary>
public static class PerplexityEvaluator
{
    public static int WindowCount(int tokens, int seqLen, int? maxWindows)
    {
        int n = tokens / seqLen;
        return maxWindows is { } k && k >= 0 ? Math.Min(n, k) : n;
    }

    public static PerplexityResult Evaluate(CausalLM model, ReadOnlySpan<int> ids, int seqLen, int? maxWindows = null,
        int batchSize = 1, Action<int, int>? progress = null)
    {
        if (seqLen < 2) throw new QuantSharpException($"--seq-len {seqLen}: must be at least 2.");
        if (batchSize < 1) throw new QuantSharpException($"--batch-size {batchSize}: must be at least 1.");
        int windows = WindowCount(ids.Length, seqLen, maxWindows);
        if (windows == 0)
            throw new QuantSharpException($"the evaluation text has {ids.Length} tokens, fewer than one window of --seq-len {seqLen}.");

        var watch = System.Diagnostics.Stopwatch.StartNew();
        double total = 0;
        using var noGrad = no_grad();
        var buffer = new long[batchSize * seqLen];
        for (int start = 0; start < windows; start += batchSize)
        {
            int n = Math.Min(batchSize, windows - start);
            for (int i = 0; i < n * seqLen; i++) buffer[i] = ids[start * seqLen + i];
            using var scope = NewDisposeScope();
            var batch = tensor(buffer.AsSpan(0, n * seqLen).ToArray(), [n, seqLen], int64).to(model.Device);
            total += WindowNll(model, batch);
            progress?.Invoke(Math.Min(start + n, windows), windows);
        }
        long predicted = (long)windows * (seqLen - 1);
        return new PerplexityResult(Math.Exp(total / predicted), windows, (long)windows * seqLen, watch.Elapsed.TotalSeconds, total);
    }

    /// <summary>Summed NLL of tokens 2..L of each row of <paramref name="batch"/> [n, L].</summary>
    public static double WindowNll(CausalLM model, Tensor batch)
    {
        using var scope = NewDisposeScope();
        var hidden = model.ForwardHidden(batch);
        long n = batch.shape[0], len = batch.shape[1];
        var logits = model.Logits(hidden.narrow(1, 0, len - 1)).to(float32);
        var targets = batch.narrow(1, 1, len - 1).reshape(-1);
        var nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets, reduction: nn.Reduction.None);
        // Sum per window in float64 so 500k-token totals do not lose precision.
        return nll.view(n, len - 1).to(float64).sum().item<double>();
    }
}
