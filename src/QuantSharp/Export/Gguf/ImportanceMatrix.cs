using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Export.Gguf;

/// <summary>
/// An importance matrix as llama.cpp's imatrix tool gathers it: for every linear weight, the mean over calibration
/// tokens of x_j² for each input column j (the diagonal of XᵀX / n). The quantizers weight each value's error by its
/// column's entry, so columns fed by large activations are kept more accurately. Keys are Hugging Face weight names.
/// </summary>
public sealed class ImportanceMatrix
{
    public IReadOnlyDictionary<string, float[]> Columns { get; }
    public long Tokens { get; }

    public ImportanceMatrix(IReadOnlyDictionary<string, float[]> columns, long tokens)
    {
        Columns = columns;
        Tokens = tokens;
    }

    public float[]? For(string weightName) => Columns.TryGetValue(weightName, out var v) ? v : null;

    /// <summary>Runs the model on the windows and collects Σx²/n per input column of every linear (and lm_head).</summary>
    public static ImportanceMatrix Collect(CausalLM model, IReadOnlyList<int[]> windows, Action<int, int>? progress = null)
    {
        var sums = new Dictionary<string, Tensor>();
        long tokens = 0;
        void Accumulate(string name, Tensor x)
        {
            using var scope = NewDisposeScope();
            var sq = x.reshape(-1, x.shape[^1]).to(float64).square().sum(0L); // 0L: a plain 0 binds to the ScalarType overload (a full sum)
            if (sums.TryGetValue(name, out var acc)) acc.add_(sq);
            else sums[name] = sq.DetachFromDisposeScope(); // kept past every forward scope; disposed at the end
        }
        try
        {
            foreach (var layer in model.Layers)
                foreach (var (name, linear) in layer.Linears())
                {
                    string key = $"model.layers.{layer.Index}.{name}.weight";
                    linear.InputObserver = x => Accumulate(key, x);
                }
            using var noGrad = no_grad();
            for (int i = 0; i < windows.Count; i++)
            {
                using var scope = NewDisposeScope();
                var ids = tensor(windows[i].Select(t => (long)t).ToArray(), [1, windows[i].Length], int64).to(model.Device);
                var hidden = model.ForwardHidden(ids);
                // lm_head's input is the final normed hidden state; a tied head is the embedding table, which
                // llama.cpp's imatrix does not weight (it is looked up, not multiplied).
                if (model.LmHead is not null) Accumulate("lm_head.weight", hidden);
                tokens += windows[i].Length;
                progress?.Invoke(i + 1, windows.Count);
            }
            var columns = new Dictionary<string, float[]>();
            foreach (var (name, sum) in sums)
            {
                using var mean = (sum / tokens).to(float32).cpu();
                columns[name] = mean.data<float>().ToArray();
            }
            return new ImportanceMatrix(columns, tokens);
        }
        finally
        {
            foreach (var layer in model.Layers)
                foreach (var (_, linear) in layer.Linears()) linear.InputObserver = null;
            foreach (var t in sums.Values) t.Dispose();
        }
    }
}
