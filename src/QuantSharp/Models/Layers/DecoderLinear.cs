using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// Something applied to a linear layer's input at run time: an online rotation, an activation quantizer, or a
/// calibration observer. Quantization installs these; the float model has none.
/// </summary>
public interface IActivationHook
{
    Tensor Apply(Tensor input);

    /// <summary>Drops anything kept from the last <see cref="Apply"/> (a hook shared by q/k/v caches its output).</summary>
    void ReleaseCache() { }
}

/// <summary>
/// y = x·Wᵀ (+ b), with the weight loaded from the checkpoint (never randomly initialised first) and an optional
/// chain of input hooks. Named like the Hugging Face state dict: <c>weight</c>, <c>bias</c>.
/// </summary>
public sealed class DecoderLinear : nn.Module<Tensor, Tensor>
{
    private Parameter _weight;
    private Parameter? _bias;

    public DecoderLinear(string name, Tensor weight, Tensor? bias) : base(name)
    {
        _weight = new Parameter(weight, requires_grad: false);
        register_parameter("weight", _weight);
        if (bias is not null)
        {
            _bias = new Parameter(bias, requires_grad: false);
            register_parameter("bias", _bias);
        }
    }

    public Parameter Weight => _weight;
    public Parameter? Bias => _bias;
    public long InFeatures => _weight.shape[1];
    public long OutFeatures => _weight.shape[0];

    /// <summary>Applied to the input, in order, first (online rotations of this layer's own input).</summary>
    public List<IActivationHook> InputHooks { get; } = [];

    /// <summary>
    /// Sees the input after <see cref="InputHooks"/> and before <see cref="InputQuantizer"/>, without changing it:
    /// GPTQ's Hessian is built from transformed but unquantized inputs, as in FP-Quant.
    /// </summary>
    public Action<Tensor>? InputObserver { get; set; }

    /// <summary>Fake-quantizes the input last, just before the matmul (W4A4).</summary>
    public IActivationHook? InputQuantizer { get; set; }

    /// <summary>
    /// Used instead of the stored weight while set (same shape and dtype): block algorithms (AWQ, TEQ, AutoRound) try
    /// candidate quantized weights this way, and trainable ones keep their autograd graph, which a
    /// <see cref="Parameter"/> replacement would cut.
    /// </summary>
    public Tensor? WeightOverride { get; set; }

    /// <summary>Replaces the weight values in place (same shape), e.g. with fake-quantized values.</summary>
    public void SetWeight(Tensor values)
    {
        if (!values.shape.SequenceEqual(_weight.shape))
            throw new ArgumentException($"{GetName()}: new weight shape [{string.Join(",", values.shape)}] != [{string.Join(",", _weight.shape)}]");
        using var _ = no_grad();
        _weight.copy_(values);
    }

    /// <summary>Replaces the weight with a tensor of a possibly different shape (a folded transform may change nothing but dtype).</summary>
    public void ReplaceWeight(Tensor values)
    {
        var old = _weight;
        _weight = new Parameter(values, requires_grad: false);
        ConditionallyRegisterParameter("weight", _weight);
        old.Dispose();
    }

    /// <summary>Moves the weight (and bias) to <paramref name="device"/>; nothing happens when they are already there.</summary>
    public void MoveTo(Device device)
    {
        if (Backend.Devices.Same(_weight.device, device)) return;
        ReplaceWeight(_weight.to(device).DetachFromDisposeScope());
        if (_bias is not null) ReplaceBias(_bias.to(device).DetachFromDisposeScope());
    }

    public void ReplaceBias(Tensor? values)
    {
        var old = _bias;
        _bias = values is null ? null : new Parameter(values, requires_grad: false);
        ConditionallyRegisterParameter("bias", _bias);
        old?.Dispose();
    }

    public override Tensor forward(Tensor input)
    {
        Tensor x = input;
        using var scope = NewDisposeScope();
        foreach (var hook in InputHooks) x = hook.Apply(x);
        InputObserver?.Invoke(x);
        if (InputQuantizer is not null) x = InputQuantizer.Apply(x);
        return nn.functional.linear(x, WeightOverride ?? _weight, _bias).MoveToOuterDisposeScope();
    }
}
