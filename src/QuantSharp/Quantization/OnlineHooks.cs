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
/// Runs an <see cref="ActivationQuantizer"/> on a linear layer's input: while calibrating (not frozen) each batch is
/// first observed (NVFP4's running global scale), then fake-quantized, in float32 and cast back. One hook may be
/// shared by the linears that read the same input (q/k/v, gate/up), so they share one global scale as in FP-Quant.
/// </summary>
public sealed class ActivationQuantizerHook : IActivationHook, IDisposable
{
    public ActivationQuantizerHook(QuantSpec spec, Tensor? frozenGlobalScale = null, bool dynamicGlobalScale = false)
    {
        Quantizer = new ActivationQuantizer(spec, dynamicGlobalScale);
        if (frozenGlobalScale is not null) Quantizer.Restore(frozenGlobalScale);
    }

    public ActivationQuantizer Quantizer { get; }
    public QuantSpec Spec => Quantizer.Spec;
    /// <summary>The calibrated global scale ([1] float32), or null for formats without one.</summary>
    public Tensor? GlobalScale => Quantizer.GlobalScale;

    public void Freeze()
    {
        if (!Quantizer.IsFrozen) Quantizer.Freeze();
    }

    // q/k/v (and gate/up) pass the very same input tensor to this shared hook one after another: quantize it once
    // and hand out the cached result (a new handle each time, since every caller disposes what it gets). The module
    // that owns the shared input calls ReleaseCache once all its projections ran, so nothing outlives the forward.
    private Tensor? _lastInput;
    private Tensor? _lastOutput;

    public Tensor Apply(Tensor input)
    {
        if (_lastOutput is not null && ReferenceEquals(input, _lastInput) && !input.IsInvalid)
            return _lastOutput.alias();
        using var scope = NewDisposeScope();
        var x = input.to(float32);
        if (!Quantizer.IsFrozen) Quantizer.Observe(x);
        Tensor result = Quantizer.QuantizeDequantize(x).to(input.dtype);
        _lastOutput?.Dispose();
        _lastOutput = result.alias().DetachFromDisposeScope();
        _lastInput = input;
        return result.MoveToOuterDisposeScope();
    }

    public void ReleaseCache()
    {
        _lastOutput?.Dispose();
        _lastOutput = null;
        _lastInput = null;
    }

    public void Dispose()
    {
        ReleaseCache();
        Quantizer.Dispose();
    }
}
