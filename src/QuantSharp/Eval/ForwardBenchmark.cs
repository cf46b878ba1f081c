using System.Diagnostics;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Eval;

public sealed record ForwardBenchmarkResult(int SeqLen, int Batch, double PrefillSeconds, double PrefillTokensPerSecond,
    int DecodeTokens, double DecodeSeconds, double DecodeTokensPerSecond);

/// <summary>
/// Times a full-sequence forward (prefill, logits of every position) and batch-1 cached decoding, after warm-up, with
/// device synchronisation around each timed region.
/// </summary>
public static class ForwardBenchmark
{
    public static ForwardBenchmarkResult Run(CausalLM model, int seqLen, int batch, int decodeTokens, int repeats = 5, int warmup = 2)
    {
        using var noGrad = no_grad();
        var gen = new Generator(1234);
        using var ids = randint(0, model.Config.VocabSize, [batch, seqLen], generator: gen, dtype: int64).to(model.Device);
        for (int i = 0; i < warmup; i++)
        {
            using var scope = NewDisposeScope();
            model.Forward(ids, null);
        }
        Sync(model.Device);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++)
        {
            using var scope = NewDisposeScope();
            model.Forward(ids, null);
        }
        Sync(model.Device);
        double prefill = watch.Elapsed.TotalSeconds / repeats;

        double decode = 0;
        if (decodeTokens > 0)
        {
            using var cache = new KvCache(model.Config.NumLayers);
            using (var scope = NewDisposeScope()) model.Forward(ids.narrow(0, 0, 1).narrow(1, 0, Math.Min(seqLen, 128)), cache);
            Sync(model.Device);
            var step = ids.narrow(0, 0, 1).narrow(1, 0, 1);
            watch.Restart();
            for (int t = 0; t < decodeTokens; t++)
            {
                using var scope = NewDisposeScope();
                var logits = model.Forward(step, cache);
                // Greedy pick on the device, as a generation loop would do (one host sync per token).
                long next = logits[0, -1].argmax().item<long>();
                step = tensor(new[] { next }, [1, 1], int64).to(model.Device).DetachFromDisposeScope();
            }
            Sync(model.Device);
            decode = watch.Elapsed.TotalSeconds;
        }
        return new ForwardBenchmarkResult(seqLen, batch, prefill, batch * seqLen / prefill, decodeTokens, decode,
            decodeTokens > 0 ? decodeTokens / decode : 0);
    }

    private static void Sync(Device d)
    {
        if (d.type == DeviceType.CUDA) cuda.synchronize();
    }
}
