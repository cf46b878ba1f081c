using QuantSharp.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Models;

public sealed record GenerationOptions(int MaxNewTokens = 32, double Temperature = 0, double TopP = 1.0, long Seed = 0,
    IReadOnlyCollection<int>? StopTokens = null)
{
    /// <summary>Called with all tokens produced so far after each step; true ends generation (e.g. a stop string appeared).</summary>
    public Func<IReadOnlyList<int>, bool>? StopWhen { get; init; }
}

/// <summary>
/// Autoregressive decoding with a KV cache: one prefill of the prompt, then one token per step. Temperature 0 is
/// greedy; otherwise softmax(logits / T) restricted to the smallest top-p nucleus, sampled with a seeded generator.
/// </summary>
public static class TextGenerator
{
    public static int[] Generate(CausalLM model, IReadOnlyList<int> prompt, GenerationOptions options, Action<int>? onToken = null)
    {
        if (prompt.Count == 0) throw new QuantSharpException("generate: the prompt encodes to no tokens.");
        using var noGrad = no_grad();
        // Layers that quantize K/V keep the codes (4-bit: two per byte), not dequantized floats.
        using var cache = new KvCache(model.Config.NumLayers, storeCodes: true);
        using var gen = new Generator((ulong)options.Seed, device: CPU);
        var output = new List<int>();
        Tensor input = tensor(prompt.Select(i => (long)i).ToArray(), [1, prompt.Count], int64);
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            int next;
            using (var scope = NewDisposeScope())
            {
                var logits = model.Forward(input, cache);
                var last = logits[0, -1].to(float32).cpu();
                next = Pick(last, options, gen);
            }
            input.Dispose();
            output.Add(next);
            onToken?.Invoke(next);
            if (options.StopTokens?.Contains(next) == true) break;
            if (options.StopWhen?.Invoke(output) == true) break;
            input = tensor(new long[] { next }, [1, 1], int64);
        }
        input.Dispose();
        return [.. output];
    }

    private static int Pick(Tensor logits, GenerationOptions o, Generator gen)
    {
        if (o.Temperature <= 0) return (int)logits.argmax().item<long>();
        using var scope = NewDisposeScope();
        var probs = nn.functional.softmax(logits / o.Temperature, 0);
        if (o.TopP < 1.0)
        {
            var (sorted, index) = probs.sort(descending: true);
            var cumulative = sorted.cumsum(0);
            // Keep tokens whose preceding mass is below top_p (the first token is always kept).
            var keep = (cumulative - sorted).lt(o.TopP);
            var filtered = zeros_like(probs).index_put_(sorted * keep, index);
            probs = filtered / filtered.sum();
        }
        return (int)probs.multinomial(1, generator: gen).item<long>();
    }
}
