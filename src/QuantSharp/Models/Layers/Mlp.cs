using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) · up(x)).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    public DecoderLinear GateProj { get; }
    public DecoderLinear UpProj { get; }
    public DecoderLinear DownProj { get; }

    public Mlp(DecoderLinear gate, DecoderLinear up, DecoderLinear down) : base("mlp")
    {
        GateProj = gate; UpProj = up; DownProj = down;
        register_module("gate_proj", gate);
        register_module("up_proj", up);
        register_module("down_proj", down);
    }

    /// <summary>Applied once to the input shared by gate/up (an online rotation), before the projections.</summary>
    public IActivationHook? InputTransform { get; set; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (InputTransform is not null) x = InputTransform.Apply(x);
        var h = nn.functional.silu(GateProj.forward(x)) * UpProj.forward(x);
        GateProj.InputQuantizer?.ReleaseCache();
        var output = DownProj.forward(h);
        DownProj.InputQuantizer?.ReleaseCache();
        return output.MoveToOuterDisposeScope();
    }
}
