using QuantSharp.Models.Layers;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>The run-time settings every layer's online state shares (from the recipe, or an export's config).</summary>
public sealed record FlatQuantRuntime(int ABits, bool ActSymmetric, KvCacheSpec? KvCache, int NumHeads, int HeadDim);

/// <summary>
/// What stays online in one decoder layer after FlatQuant is reparameterised: the Kronecker factors before q/k/v,
/// gate/up and down_proj, the head-mixing matrix before o_proj, the per-head K transform, and the LAC clip ratios of
/// each activation and KV quantizer. Tensors are named as the int4 export stores them (<c>qkv.left</c>, ...).
/// Everything else (add_diag scales, LWC, the V transform, all inverses) is already folded into the weights.
/// </summary>
public sealed class FlatQuantOnline : IDisposable
{
    public const string Qkv = "qkv", O = "o", GateUp = "gate_up", Down = "down", KCache = "k_cache", VCache = "v_cache";

    public FlatQuantOnline(int layerIndex, Dictionary<string, Tensor> tensors)
    {
        LayerIndex = layerIndex;
        Tensors = tensors;
    }

    public int LayerIndex { get; }
    public Dictionary<string, Tensor> Tensors { get; }
    private KvCacheHook? _kv;

    private Tensor? Get(string name) => Tensors.GetValueOrDefault(name);

    private (Tensor, Tensor)? Clip(string slot) =>
        Get(slot + ".clip_max") is { } mx && Get(slot + ".clip_min") is { } mn ? (mx, mn) : null;

    /// <summary>Installs the online transforms, activation quantizers and KV-cache hook on the layer.</summary>
    public void Attach(DecoderLayer layer, FlatQuantRuntime rt)
    {
        var attn = layer.SelfAttn;
        var mlp = layer.Mlp;
        attn.InputTransform = Kron(Qkv);
        mlp.InputTransform = Kron(GateUp);
        mlp.DownProj.InputHooks.Clear();
        if (Kron(Down) is { } d) mlp.DownProj.InputHooks.Add(d);
        attn.OProj.InputHooks.Clear();
        if (Get(O + ".heads") is { } heads) attn.OProj.InputHooks.Add(new KroneckerHook(heads, null, rt.HeadDim));

        if (rt.ABits < 16)
        {
            TokenQuantizerHook Act(string slot)
            {
                var c = Clip(slot);
                return new TokenQuantizerHook(rt.ABits, rt.ActSymmetric, c?.Item1, c?.Item2);
            }
            var qkv = Act(Qkv);
            attn.QProj.InputQuantizer = qkv;
            attn.KProj.InputQuantizer = qkv;
            attn.VProj.InputQuantizer = qkv;
            attn.OProj.InputQuantizer = Act(O);
            var gu = Act(GateUp);
            mlp.GateProj.InputQuantizer = gu;
            mlp.UpProj.InputQuantizer = gu;
            mlp.DownProj.InputQuantizer = Act(Down);
        }
        _kv?.Dispose();
        _kv = null;
        if (rt.KvCache is { } kv && (kv.QuantizesKeys || kv.QuantizesValues))
            _kv = new KvCacheHook(kv, rt.HeadDim, keyTransform: Get(KCache + ".transform"), keyClip: Clip(KCache), valueClip: Clip(VCache));
        attn.KvHook = _kv;
    }

    private KroneckerHook? Kron(string slot) =>
        Get(slot + ".left") is { } l && Get(slot + ".right") is { } r ? new KroneckerHook(l, r, (int)r.shape[0]) : null;

    public void Dispose()
    {
        _kv?.Dispose();
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
