using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// Grouped-query self-attention with RoPE, optional q/k RMSNorm (Qwen3) and optional biases (Qwen2).
/// Submodule names follow the Hugging Face state dict.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly ModelConfig _config;

    public DecoderLinear QProj { get; }
    public DecoderLinear KProj { get; }
    public DecoderLinear VProj { get; }
    public DecoderLinear OProj { get; }
    public RmsNorm? QNorm { get; }
    public RmsNorm? KNorm { get; }

    /// <summary>Applied once to the hidden states shared by q/k/v (an online rotation), before the projections.</summary>
    public IActivationHook? InputTransform { get; set; }

    /// <summary>Sees q/k/v after RoPE (KV-cache quantization, per-head transforms) and the output before o_proj.</summary>
    public IAttentionHook? KvHook { get; set; }

    public Attention(ModelConfig config, DecoderLinear q, DecoderLinear k, DecoderLinear v, DecoderLinear o,
        RmsNorm? qNorm, RmsNorm? kNorm) : base("self_attn")
    {
        _config = config;
        QProj = q; KProj = k; VProj = v; OProj = o; QNorm = qNorm; KNorm = kNorm;
        register_module("q_proj", q);
        register_module("k_proj", k);
        register_module("v_proj", v);
        register_module("o_proj", o);
        if (qNorm is not null) register_module("q_norm", qNorm);
        if (kNorm is not null) register_module("k_norm", kNorm);
    }

    /// <summary>Not used: attention needs the rotary tables; call <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) =>
        throw new InvalidOperationException("Attention.forward needs rotary tables; use Forward(x, cos, sin, cache, layer).");

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, KvCache? cache, int layerIndex)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], s = x.shape[1];
        int nh = _config.NumHeads, nkv = _config.NumKvHeads, hd = _config.HeadDim;

        if (InputTransform is not null) x = InputTransform.Apply(x);
        var q = QProj.forward(x).view(b, s, nh, hd);
        var k = KProj.forward(x).view(b, s, nkv, hd);
        var v = VProj.forward(x).view(b, s, nkv, hd);
        QProj.InputQuantizer?.ReleaseCache();
        if (QNorm is not null) q = QNorm.forward(q);
        if (KNorm is not null) k = KNorm.forward(k);
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        v = v.transpose(1, 2);

        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        long past = cache?.LengthOf(layerIndex) ?? 0;
        if (cache is { StoresCodes: true } && KvHook is IKvCacheCodec codec)
        {
            // Same numbers as AfterRope's fake quantization, but the cache keeps the codes, not the floats.
            (q, k, v) = codec.TransformAfterRope(q, k, v);
            (k, v) = cache.AppendEncoded(layerIndex, codec, k, v);
        }
        else
        {
            if (KvHook is not null) (q, k, v) = KvHook.AfterRope(q, k, v);
            if (cache is not null) (k, v) = cache.Append(layerIndex, k, v);
        }
        if (nh != nkv)
        {
            k = k.repeat_interleave(nh / nkv, dim: 1);
            v = v.repeat_interleave(nh / nkv, dim: 1);
        }

        Tensor attn;
        if (past == 0)
        {
            attn = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: s > 1);
        }
        else if (s == 1)
        {
            attn = nn.functional.scaled_dot_product_attention(q, k, v);
        }
        else
        {
            // Queries at positions past..past+s-1 see keys 0..their own position (bottom-right aligned mask).
            var mask = ones(s, past + s, dtype: ScalarType.Bool, device: x.device).tril(past);
            attn = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        }
        var merged = attn.transpose(1, 2).reshape(b, s, nh * hd);
        if (KvHook is not null) merged = KvHook.BeforeOutput(merged);
        var output = OProj.forward(merged);
        OProj.InputQuantizer?.ReleaseCache();
        return output.MoveToOuterDisposeScope();
    }
}
