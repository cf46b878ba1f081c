using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>Pre-norm decoder block: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class DecoderLayer : nn.Module<Tensor, Tensor>
{
    public int Index { get; }
    public RmsNorm InputLayerNorm { get; }
    public Attention SelfAttn { get; }
    public RmsNorm PostAttentionLayerNorm { get; }
    public Mlp Mlp { get; }

    public DecoderLayer(int index, RmsNorm inputNorm, Attention attn, RmsNorm postNorm, Mlp mlp) : base($"layers.{index}")
    {
        Index = index;
        InputLayerNorm = inputNorm; SelfAttn = attn; PostAttentionLayerNorm = postNorm; Mlp = mlp;
        register_module("input_layernorm", inputNorm);
        register_module("self_attn", attn);
        register_module("post_attention_layernorm", postNorm);
        register_module("mlp", mlp);
    }

    public override Tensor forward(Tensor input) =>
        throw new InvalidOperationException("DecoderLayer needs rotary tables; use Forward(x, cos, sin, cache).");

    /// <summary>All seven linears, in execution order, with their short names (q_proj … down_proj).</summary>
    public IEnumerable<(string Name, DecoderLinear Linear)> Linears()
    {
        yield return ("self_attn.q_proj", SelfAttn.QProj);
        yield return ("self_attn.k_proj", SelfAttn.KProj);
        yield return ("self_attn.v_proj", SelfAttn.VProj);
        yield return ("self_attn.o_proj", SelfAttn.OProj);
        yield return ("mlp.gate_proj", Mlp.GateProj);
        yield return ("mlp.up_proj", Mlp.UpProj);
        yield return ("mlp.down_proj", Mlp.DownProj);
    }

    /// <summary>Moves every parameter of the layer to <paramref name="device"/> (layer streaming, --cpu-offload-modules).</summary>
    public void MoveTo(Device device)
    {
        InputLayerNorm.MoveTo(device);
        PostAttentionLayerNorm.MoveTo(device);
        SelfAttn.QNorm?.MoveTo(device);
        SelfAttn.KNorm?.MoveTo(device);
        foreach (var (_, linear) in Linears()) linear.MoveTo(device);
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        var h = x + SelfAttn.Forward(InputLayerNorm.forward(x), cos, sin, cache, Index);
        var o = h + Mlp.forward(PostAttentionLayerNorm.forward(h));
        return o.MoveToOuterDisposeScope();
    }
}
