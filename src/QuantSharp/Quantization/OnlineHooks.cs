using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// Applies a block rotation to activations at run time (x' = x·M), in the activations' dtype. The transform is owned
/// by the layer's quantization state, not by the hook.
/// </summary>
public sealed class TransformHook(BlockTransform transform) : IActivationHook
{
    public BlockTransform Transform { get; } = transform;

    public Tensor Apply(Tensor input) => Transform.ApplyToActivations(input);
}

/// <summary>
/// Dynamic activation fake-quantization: per token (row), per group along the hidden dimension, min-max scales, in
/// float32, cast back. NVFP4 also needs a per-tensor global scale: while <see cref="Tracking"/> it is the running
/// minimum over calibration batches of 448·6/max|x| (FP-Quant's rule); <see cref="Freeze"/> fixes it for inference.
/// One hook may be shared by several linears that read the same input (q/k/v, gate/up), so they share that scale.
/// </summary>
public sealed class ActivationQuantizerHook : IActivationHook, IDisposable
{
    private readonly IWeightQuantizer _quantizer;
    private Tensor? _globalScale;

    public ActivationQuantizerHook(QuantSpec spec, Tensor? frozenGlobalScale = null)
    {
        _quantizer = WeightQuantizer.Create(spec);
        if (frozenGlobalScale is not null)
        {
            _globalScale = frozenGlobalScale.to(float32).clone().DetachFromDisposeScope();
            Tracking = false;
        }
    }

    public QuantSpec Spec => _quantizer.Spec;
    public bool Tracking { get; private set; } = true;
    public bool UsesGlobalScale => Spec.Format == QuantFormat.NvFp;
    /// <summary>The calibrated global scale ([1] float32), or null before any batch or for formats without one.</summary>
    public Tensor? GlobalScale => _globalScale;

    public void Freeze() => Tracking = false;

    public Tensor Apply(Tensor input)
    {
        using var scope = NewDisposeScope();
        long[] shape = input.shape;
        var x = input.reshape(-1, shape[^1]).to(float32);
        Tensor? gs = null;
        if (UsesGlobalScale)
        {
            if (Tracking)
            {
                var current = _quantizer.ComputeGlobalScale(x)!;
                var updated = _globalScale is null ? current.clone() : minimum(_globalScale.to(current.device), current);
                _globalScale?.Dispose();
                _globalScale = updated.DetachFromDisposeScope();
            }
            if (_globalScale is null)
                throw new InvalidOperationException("NVFP activation global scale used before calibration");
            gs = _globalScale.device == x.device ? _globalScale : _globalScale.to(x.device);
        }
        using var p = _quantizer.ComputeParams(x, gs);
        return _quantizer.QuantizeDequantize(x, p).to(input.dtype).reshape(shape).MoveToOuterDisposeScope();
    }

    public void Dispose() => _globalScale?.Dispose();
}
