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
        // H_new = n/(n+b)·H_old + 2/(n+b)·XᵀX, scaling the product rather than X: half-precision activations
        // (bf16/fp16) are then exactly representable in TF32, so on CUDA the product can run on tensor cores in TF32
        // with fp32 accumulation and still be exact up to summation order. (Scaling X first would leave values TF32
        // truncates.) Float32 activations keep full-precision fp32 products.
        bool exactInTf32 = _hessian.device.type == DeviceType.CUDA && input.dtype is ScalarType.BFloat16 or ScalarType.Float16;
        bool previous = exactInTf32 && torch.backends.cuda.matmul.allow_tf32;
        if (exactInTf32) torch.backends.cuda.matmul.allow_tf32 = true;
        try
        {
            _hessian.addmm_(x.t(), x, beta: (float)((double)Tokens / total), alpha: (float)(2.0 / total));
        }
        finally
        {
            if (exactInTf32) torch.backends.cuda.matmul.allow_tf32 = previous;
        }
        Tokens = total;
    }

    public void Dispose() => _hessian.Dispose();
}
