using Microsoft.ML.OnnxRuntime;

namespace QuantSharp.Tests.Export.Onnx;

/// <summary>Runs an exported file in ONNX Runtime (CPU) and scores it by the project's perplexity protocol.</summary>
internal sealed class OrtModel : IDisposable
{
    private readonly InferenceSession _session;

    public OrtModel(string path)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
        _session = new InferenceSession(path, options);
    }

    /// <summary>Logits [batch, seq, vocab] flattened, for token ids [batch, seq] flattened.</summary>
    public float[] Logits(long[] ids, int batch, int seq)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(ids, [batch, seq]);
        using var run = new RunOptions();
        using var outputs = _session.Run(run, ["input_ids"], [input], ["logits"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>Summed NLL of tokens 2..seq of each row (log-softmax in float64).</summary>
    public static double SummedNll(float[] logits, long[] ids, int batch, int seq, int vocab)
    {
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seq - 1; t++)
            {
                var row = logits.AsSpan((b * seq + t) * vocab, vocab);
                double max = double.NegativeInfinity;
                foreach (float v in row) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in row) sum += Math.Exp(v - max);
                total += max + Math.Log(sum) - row[(int)ids[b * seq + t + 1]];
            }
        }
        return total;
    }

    public void Dispose() => _session.Dispose();
}
