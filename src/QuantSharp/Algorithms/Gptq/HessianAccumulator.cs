using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>
/// Running GPTQ Hessian of a linear layer's inputs: H = 2/N Σ x xᵀ over all N tokens seen, in float32. Each batch
/// rescales the previous mean instead of summing first, so H stays O(1) in magnitude however many tokens arrive.
/// </summary>
public sealed class HessianAccumulator : IDisposable
{
    private readonly string _layerName;
    private Tensor _hessian;

    /// <param name="columns">The layer's input width.</param>
    /// <param name="device">Where H lives (defaults to CPU).</param>
    /// <param name="layerName">Names the layer in errors.</param>
    public HessianAccumulator(int columns, Device? device = null, string layerName = "layer")
    {
        if (columns <= 0) throw new ArgumentOutOfRangeException(nameof(columns));
        Columns = columns;
        _layerName = layerName;
        _hessian = zeros(columns, columns, ScalarType.Float32, device ?? CPU).DetachFromDisposeScope();
    }

    public int Columns { get; }

    /// <summary>Tokens (rows of all inputs) accumulated so far.</summary>
    public long Tokens { get; private set; }

    /// <summary>The current H [in, in] float32, owned by this accumulator.</summary>
    public Tensor Hessian => _hessian;

    /// <summary>Adds a batch of layer inputs [..., in] (any float dtype, any device).</summary>
    public void Add(Tensor input)
    {
        if (input.shape[^1] != Columns)
            throw new QuantSharpException($"layer '{_layerName}': input width {input.shape[^1]} does not match the Hessian's {Columns} columns.");
        using var scope = NewDisposeScope();
        Tensor x = input.detach().reshape(-1, Columns).to(ScalarType.Float32).to(_hessian.device);
        long batch = x.shape[0];
        if (batch == 0) return;
        long total = Tokens + batch;
        // H_new = n/(n+b)·H_old + 2/(n+b)·XᵀX: scale X by sqrt(2/(n+b)) so one addmm does the sum.
        _hessian.mul_((double)Tokens / total);
        Tensor scaled = x.mul(Math.Sqrt(2.0 / total));
        _hessian.addmm_(scaled.t(), scaled);
        Tokens = total;
    }

    public void Dispose() => _hessian.Dispose();
}
