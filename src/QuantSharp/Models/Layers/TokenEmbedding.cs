using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>Token embedding table [vocab, hidden], looked up by index.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private Parameter _weight;

    public TokenEmbedding(string name, Tensor weight) : base(name)
    {
        _weight = new Parameter(weight, requires_grad: false);
        register_parameter("weight", _weight);
    }

    public Parameter Weight => _weight;

    /// <summary>Moves the table to <paramref name="device"/>.</summary>
    public void MoveTo(Device device)
    {
        if (Backend.Devices.Same(_weight.device, device)) return;
        var old = _weight;
        _weight = new Parameter(old.to(device).DetachFromDisposeScope(), requires_grad: false);
        ConditionallyRegisterParameter("weight", _weight);
        old.Dispose();
    }

    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var flat = _weight.index_select(0, ids.reshape(-1));
        long[] shape = [.. ids.shape, _weight.shape[1]];
        return flat.view(shape).MoveToOuterDisposeScope();
    }
}
