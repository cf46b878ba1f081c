using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>Token embedding table [vocab, hidden], looked up by index.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter _weight;

    public TokenEmbedding(string name, Tensor weight) : base(name)
    {
        _weight = new Parameter(weight, requires_grad: false);
        register_parameter("weight", _weight);
    }

    public Parameter Weight => _weight;

    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var flat = _weight.index_select(0, ids.reshape(-1));
        long[] shape = [.. ids.shape, _weight.shape[1]];
        return flat.view(shape).MoveToOuterDisposeScope();
    }
}
