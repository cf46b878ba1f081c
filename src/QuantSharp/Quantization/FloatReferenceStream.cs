using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// The unquantized model's activations, carried block by block beside the pipeline's quantized stream: trained block
/// algorithms (TEQ, AutoRound) fit the quantized block, fed the quantized stream, to the float block fed float inputs.
/// Outputs stay where the pipeline keeps its activations (CPU memory with --cpu-offload-activations).
/// </summary>
public sealed class FloatReferenceStream : IDisposable
{
    private List<Tensor>? _inputs, _targets;

    /// <summary>
    /// This block's float inputs and its float outputs (the targets), computed with the block's current weights:
    /// call before changing them. The first block's float inputs are the pipeline's (the embeddings).
    /// </summary>
    public (IReadOnlyList<Tensor> Inputs, IReadOnlyList<Tensor> Targets) Begin(BlockContext context)
    {
        if (_targets is not null)
        {
            Release(_inputs);
            _inputs = _targets;
            _targets = null;
        }
        _inputs ??= context.Inputs.Select(t => t.clone().DetachFromDisposeScope()).ToList();
        var targets = new List<Tensor>(_inputs.Count);
        foreach (var x in _inputs)
        {
            using var scope = NewDisposeScope();
            targets.Add(context.Forward(x.to(context.Device)).to(x.device).DetachFromDisposeScope());
        }
        _targets = targets;
        return (_inputs, _targets);
    }

    private static void Release(List<Tensor>? list)
    {
        if (list is null) return;
        foreach (var t in list) t.Dispose();
    }

    public void Dispose()
    {
        Release(_inputs);
        Release(_targets);
        _inputs = _targets = null;
    }
}
