using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.EquivalentScaling;

/// <summary>
/// A place in a decoder block where a per-channel scale t leaves the float function unchanged: the consumers' weight
/// columns are multiplied by t and the producer of their input (an RMSNorm, or a linear's output rows) divided by it.
/// AWQ and TEQ choose t; this class knows the four fold points of a Llama/Qwen block and how to apply t.
/// For o_proj under grouped-query attention, v_proj has fewer outputs than o_proj has inputs (each v head feeds
/// <c>rep</c> query heads); a scale tied across those copies still folds exactly, so t has v_proj's width and is
/// expanded to o_proj's columns.
/// </summary>
public sealed class ScaleFoldPoint
{
    private readonly int _repeat, _headDim;

    private ScaleFoldPoint(string slot, string[] consumers, RmsNorm? norm, string? producerLinear, int width, int repeat, int headDim)
    {
        Slot = slot; Consumers = consumers; Norm = norm; ProducerLinear = producerLinear; Width = width;
        _repeat = repeat; _headDim = headDim;
    }

    /// <summary>qkv, o, gate_up or down (the pipeline's input slots).</summary>
    public string Slot { get; }

    /// <summary>Linears reading the scaled input (their weight columns are multiplied by t).</summary>
    public string[] Consumers { get; }

    /// <summary>The norm producing the input (divided by t), or null when a linear does.</summary>
    public RmsNorm? Norm { get; }

    /// <summary>The linear whose output rows produce the input (divided by t), or null when a norm does.</summary>
    public string? ProducerLinear { get; }

    /// <summary>Length of t (the producer's width).</summary>
    public int Width { get; }

    /// <summary>Fold points of a block. <paramref name="tieGroupedQuery"/>: include o_proj under GQA with a tied scale.</summary>
    public static List<ScaleFoldPoint> Of(DecoderLayer layer, ModelConfig config, bool tieGroupedQuery)
    {
        int hd = config.HeadDim, rep = config.NumHeads / config.NumKvHeads;
        var points = new List<ScaleFoldPoint>
        {
            new("qkv", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], layer.InputLayerNorm, null, config.HiddenSize, 1, hd),
        };
        if (rep == 1 || tieGroupedQuery)
            points.Add(new("o", ["self_attn.o_proj"], null, "self_attn.v_proj", config.NumKvHeads * hd, rep, hd));
        points.Add(new("gate_up", ["mlp.gate_proj", "mlp.up_proj"], layer.PostAttentionLayerNorm, null, config.HiddenSize, 1, hd));
        points.Add(new("down", ["mlp.down_proj"], null, "mlp.up_proj", config.IntermediateSize, 1, hd));
        return points;
    }

    /// <summary>t [Width] as a per-column factor of the consumers [Width·rep].</summary>
    public Tensor Expand(Tensor t)
    {
        if (_repeat == 1) return t;
        long heads = t.shape[0] / _headDim;
        return t.reshape(heads, 1, _headDim).expand(heads, _repeat, _headDim).reshape(-1);
    }

    /// <summary>A per-consumer-column statistic averaged over the copies that share one entry of t.</summary>
    public Tensor Reduce(Tensor perColumn)
    {
        if (_repeat == 1) return perColumn;
        return perColumn.reshape(-1, _repeat, _headDim).mean([1]).reshape(-1);
    }

    /// <summary>Applies t: consumers' columns × t, producer ÷ t (weights kept in float32 in the context).</summary>
    public void Fold(BlockContext context, Tensor t)
    {
        using var scope = NewDisposeScope();
        Tensor t32 = t.to(float32).to(context.Device), columns = Expand(t32).unsqueeze(0);
        foreach (var name in Consumers) context.SetFloatWeight(name, context.FloatWeight(name).mul(columns));
        if (Norm is not null)
        {
            var dtype = Norm.Weight.dtype;
            Norm.ReplaceWeight(Norm.Weight.to(float32).div(t32).to(dtype).DetachFromDisposeScope());
        }
        else
        {
            context.SetFloatWeight(ProducerLinear!, context.FloatWeight(ProducerLinear!).div(t32.unsqueeze(1)));
            var producer = context.Linear(ProducerLinear!);
            if (producer.Bias is { } bias)
                producer.ReplaceBias(bias.to(float32).div(t32).to(bias.dtype).DetachFromDisposeScope());
        }
    }
}
