using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// RMSNorm as transformers computes it: normalise in float32, cast back to the input dtype, then scale by the
/// weight. The order matters for bit-level agreement in bf16.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private Parameter _weight;
    private readonly double _eps;

    public RmsNorm(string name, Tensor weight, double eps) : base(name)
    {
        _weight = new Parameter(weight, requires_grad: false);
        register_parameter("weight", _weight);
        _eps = eps;
    }

    public Parameter Weight => _weight;
    public double Eps => _eps;

    /// <summary>Replaces the scale vector (smoothing folds per-channel factors into it).</summary>
    /// <summary>Moves the weight to <paramref name="device"/>.</summary>
    public void MoveTo(Device device)
    {
        if (!Backend.Devices.Same(_weight.device, device)) ReplaceWeight(_weight.to(device).DetachFromDisposeScope());
    }

    public void ReplaceWeight(Tensor values)
    {
        var old = _weight;
        _weight = new Parameter(values, requires_grad: false);
        ConditionallyRegisterParameter("weight", _weight);
        old.Dispose();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var dtype = input.dtype;
        var x = input.to(float32);
        var variance = x.pow(2).mean([-1], keepdim: true);
        x = x * rsqrt(variance + _eps);
        return (_weight * x.to(dtype)).MoveToOuterDisposeScope();
    }
}
