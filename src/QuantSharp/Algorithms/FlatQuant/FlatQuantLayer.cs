using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// The trainable FlatQuant parameters of one decoder layer and a differentiable float32 forward of that layer with
/// them applied (transforms, LWC-clipped and fake-quantized weights, LAC-clipped per-token activations, transformed
/// and quantized K/V). Calibration fits them to the float layer's outputs; <see cref="Reparameterize"/> then folds
/// them into the <see cref="DecoderLayer"/>.
/// </summary>
public sealed class FlatQuantLayer : IDisposable
{
    /// <summary>Initial LWC/LAC logit: sigmoid(4) ≈ 0.982, i.e. almost no clipping at first (the reference's value).</summary>
    public const float ClipInit = 4f;

    private readonly ModelConfig _c;
    private readonly FlatQuantOptions _o;
    private readonly DecoderLayer _layer;
    private readonly Dictionary<string, Tensor> _w = new();     // float32 copies of the float weights
    private readonly Dictionary<string, Tensor?> _b = new();
    private readonly Dictionary<string, (Parameter Max, Parameter Min)> _lwc = new();
    private readonly Dictionary<string, (Parameter Max, Parameter Min)> _lac = new();

    public static readonly string[] LinearNames =
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    public FlatQuantLayer(DecoderLayer layer, ModelConfig config, FlatQuantOptions options, Device device)
    {
        _c = config;
        _o = options;
        _layer = layer;
        long seed = options.Seed * 1_000_003L + layer.Index * 16L;
        var form = options.Parameterization;
        Qkv = new KroneckerTransform(config.HiddenSize, options.AddDiag, seed + 1, device, form);
        GateUp = new KroneckerTransform(config.HiddenSize, options.AddDiag, seed + 2, device, form);
        Down = new KroneckerTransform(config.IntermediateSize, options.AddDiag, seed + 3, device, form);
        Heads = new TransformMatrix(config.NumHeads, seed + 4, device, form);
        Value = new TransformMatrix(config.HeadDim, seed + 5, device, form);
        if (options.KvCache is { QuantizesKeys: true }) Key = new TransformMatrix(config.HeadDim, seed + 6, device, form);

        foreach (var (name, linear) in layer.Linears())
        {
            _w[name] = linear.Weight.detach().to(ScalarType.Float32, device, copy: true).DetachFromDisposeScope();
            _b[name] = linear.Bias?.detach().to(ScalarType.Float32, device, copy: true).DetachFromDisposeScope();
            if (options.Lwc && options.QuantizesWeights)
                _lwc[name] = (ClipParameter([linear.OutFeatures, 1], device), ClipParameter([linear.OutFeatures, 1], device));
        }
        if (options.Lac)
        {
            var slots = new List<string>();
            if (options.QuantizesActivations) slots.AddRange([FlatQuantOnline.Qkv, FlatQuantOnline.O, FlatQuantOnline.GateUp, FlatQuantOnline.Down]);
            if (options.KvCache is { QuantizesKeys: true }) slots.Add(FlatQuantOnline.KCache);
            if (options.KvCache is { QuantizesValues: true }) slots.Add(FlatQuantOnline.VCache);
            foreach (var s in slots) _lac[s] = (ClipParameter([1], device), ClipParameter([1], device));
        }
    }

    public KroneckerTransform Qkv { get; }
    public KroneckerTransform GateUp { get; }
    public KroneckerTransform Down { get; }
    /// <summary>Head mixing (num_heads²) on o_proj's input, online.</summary>
    public TransformMatrix Heads { get; }
    /// <summary>Per-head V transform (head_dim²), folded into v_proj (outputs) and o_proj (inputs).</summary>
    public TransformMatrix Value { get; }
    /// <summary>Per-head K transform after RoPE (inverse-transposed on Q), online; null when K is not quantized.</summary>
    public TransformMatrix? Key { get; }

    private static Parameter ClipParameter(long[] shape, Device device) =>
        new(full(shape, ClipInit, ScalarType.Float32, device), requires_grad: true);

    /// <summary>Transform matrices and add_diag scales (trained at lr) and clip logits (trained at 10× lr).</summary>
    public (List<Parameter> Transforms, List<Parameter> Clips) TrainableParameters()
    {
        var t = new List<Parameter>();
        foreach (var k in new[] { Qkv, GateUp, Down })
        {
            t.AddRange(k.MatrixParameters());
            if (k.Diag is not null) t.Add(k.Diag);
        }
        t.AddRange(Heads.Parameters);
        t.AddRange(Value.Parameters);
        if (Key is not null) t.AddRange(Key.Parameters);
        var c = new List<Parameter>();
        foreach (var (mx, mn) in _lwc.Values) { c.Add(mx); c.Add(mn); }
        foreach (var (mx, mn) in _lac.Values) { c.Add(mx); c.Add(mn); }
        return (t, c);
    }

    /// <summary>Every trained tensor by name (what --resume saves per layer).</summary>
    public Dictionary<string, Tensor> NamedParameters()
    {
        var d = new Dictionary<string, Tensor>();
        void Add(string name, TransformMatrix m)
        {
            foreach (var (suffix, p) in m.Named()) d[name + suffix] = p;
        }
        Add("qkv.left", Qkv.Left); Add("qkv.right", Qkv.Right);
        Add("gate_up.left", GateUp.Left); Add("gate_up.right", GateUp.Right);
        Add("down.left", Down.Left); Add("down.right", Down.Right);
        Add("o.heads", Heads); Add("v.transform", Value);
        if (Qkv.Diag is not null) d["qkv.diag"] = Qkv.Diag;
        if (GateUp.Diag is not null) d["gate_up.diag"] = GateUp.Diag;
        if (Down.Diag is not null) d["down.diag"] = Down.Diag;
        if (Key is not null) Add("k_cache.transform", Key);
        foreach (var (n, (mx, mn)) in _lwc) { d[n + ".lwc_max"] = mx; d[n + ".lwc_min"] = mn; }
        foreach (var (n, (mx, mn)) in _lac) { d[n + ".lac_max"] = mx; d[n + ".lac_min"] = mn; }
        return d;
    }

    /// <summary>Overwrites the parameters with saved values (resume); every name must be present with its shape.</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> saved, string source)
    {
        using var _ = no_grad();
        foreach (var (name, p) in NamedParameters())
        {
            if (!saved.TryGetValue(name, out var v) || !v.shape.SequenceEqual(p.shape))
                throw new QuantSharpException($"{source}: layer {_layer.Index} parameter '{name}' is missing or has another shape; " +
                                              "the resume folder was written for another model or recipe.");
            p.copy_(v.to(p.dtype, p.device));
        }
    }

    /// <summary>SmoothQuant-style add_diag init s = max|W|^(1−α) / max|X|^α per input channel (clamped at 1e-5).</summary>
    public void InitDiag(Tensor qkvInputMax, Tensor gateUpInputMax, Tensor downInputMax)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        double a = _o.DiagAlpha;
        Tensor ColumnMax(params string[] names) => cat(names.Select(n => _w[n]).ToArray(), 0).abs().amax([0]);
        void Init(KroneckerTransform t, Tensor wMax, Tensor xMax)
        {
            if (t.Diag is null) return;
            t.Diag.copy_(wMax.pow(1 - a).div(xMax.to(wMax.device).clamp_min(1e-5).pow(a)).clamp_min(1e-5));
        }
        Init(Qkv, ColumnMax("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), qkvInputMax);
        Init(GateUp, ColumnMax("mlp.gate_proj", "mlp.up_proj"), gateUpInputMax);
        Init(Down, ColumnMax("mlp.down_proj"), downInputMax);
    }

    private Tensor? LacMax(string slot) => _lac.TryGetValue(slot, out var p) ? sigmoid(p.Max) : null;
    private Tensor? LacMin(string slot) => _lac.TryGetValue(slot, out var p) ? sigmoid(p.Min) : null;

    private Tensor Act(Tensor x, string slot, bool quantize) => quantize && _o.QuantizesActivations
        ? StraightThroughQuant.FakeQuant(x, _o.ABits, !_o.ActAsymmetric, -1, LacMax(slot), LacMin(slot))
        : x;

    /// <summary>LWC: clamp each output row to [min·σ(c_min), max·σ(c_max)] of its range.</summary>
    private Tensor Clip(string name, Tensor w)
    {
        if (!_lwc.TryGetValue(name, out var p)) return w;
        using var scope = NewDisposeScope();
        Tensor hi = w.amax([1], keepdim: true) * sigmoid(p.Max);
        Tensor lo = w.amin([1], keepdim: true) * sigmoid(p.Min);
        return minimum(maximum(w, lo), hi).MoveToOuterDisposeScope();
    }

    private Tensor QuantW(Tensor w, bool quantize) =>
        quantize && _o.QuantizesWeights ? StraightThroughQuant.FakeQuant(w, _o.WBits, symmetric: true) : w;

    /// <summary>v_proj's output transform: each head's rows of W (and its bias) mixed by Tᵀ, so v → v·T per head.</summary>
    private Tensor HeadOutputTransform(Tensor w, Tensor t)
    {
        using var scope = NewDisposeScope();
        int hd = _c.HeadDim;
        Tensor r = w.t().reshape(-1, hd).matmul(t).reshape(w.shape[1], w.shape[0]).t();
        return r.MoveToOuterDisposeScope();
    }

    /// <summary>The transformed, clipped (not yet quantized) weights of the layer, differentiable.</summary>
    public Dictionary<string, Tensor> TransformedWeights(Tensor? headsOverride = null, Tensor? valueOverride = null)
    {
        var r = new Dictionary<string, Tensor>();
        Tensor value = valueOverride ?? Value.Matrix();
        Tensor headsInvT = headsOverride is null ? Heads.InverseTranspose() : TransformMatrix.InverseTransposeOfDifferentiable(headsOverride);
        Tensor valueInvT = valueOverride is null ? Value.InverseTranspose() : TransformMatrix.InverseTransposeOfDifferentiable(valueOverride);
        foreach (var n in new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
            r[n] = Clip(n, Qkv.FoldIntoWeight(_w[n]));
        r["self_attn.v_proj"] = HeadOutputTransform(r["self_attn.v_proj"], value);
        r["self_attn.o_proj"] = Clip("self_attn.o_proj", Kronecker.Apply(_w["self_attn.o_proj"], headsInvT, valueInvT));
        foreach (var n in new[] { "mlp.gate_proj", "mlp.up_proj" })
            r[n] = Clip(n, GateUp.FoldIntoWeight(_w[n]));
        r["mlp.down_proj"] = Clip("mlp.down_proj", Down.FoldIntoWeight(_w["mlp.down_proj"]));
        return r;
    }

    private Tensor? VBias(Tensor value)
    {
        var b = _b["self_attn.v_proj"];
        return b is null ? null : b.reshape(-1, _c.HeadDim).matmul(value).reshape(-1);
    }

    private static Tensor Norm(Tensor x, RmsNorm norm)
    {
        Tensor w = norm.Weight.detach().to(ScalarType.Float32, x.device);
        return w * (x * rsqrt(x.pow(2).mean([-1], keepdim: true) + norm.Eps));
    }

    /// <summary>
    /// The layer's output for float32 hidden states x [b, s, hidden] with the transforms applied and, when
    /// <paramref name="quantize"/>, weights, activations and K/V fake-quantized (straight-through gradients).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, bool quantize)
    {
        var matrices = Matrices().ToList();
        foreach (var m in matrices) m.BeginStep();
        try { return ForwardStep(x, cos, sin, quantize); }
        finally { foreach (var m in matrices) m.EndStep(); }
    }

    private IEnumerable<TransformMatrix> Matrices()
    {
        foreach (var k in new[] { Qkv, GateUp, Down }) { yield return k.Left; yield return k.Right; }
        yield return Heads;
        yield return Value;
        if (Key is not null) yield return Key;
    }

    private Tensor ForwardStep(Tensor x, Tensor cos, Tensor sin, bool quantize)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], s = x.shape[1];
        int nh = _c.NumHeads, nkv = _c.NumKvHeads, hd = _c.HeadDim;
        var w = TransformedWeights();
        Tensor L(string n, Tensor input, Tensor? bias) => nn.functional.linear(input, QuantW(w[n], quantize), bias);

        Tensor h = Act(Qkv.Apply(Norm(x, _layer.InputLayerNorm)), FlatQuantOnline.Qkv, quantize);
        Tensor q = L("self_attn.q_proj", h, _b["self_attn.q_proj"]).view(b, s, nh, hd);
        Tensor k = L("self_attn.k_proj", h, _b["self_attn.k_proj"]).view(b, s, nkv, hd);
        Tensor v = L("self_attn.v_proj", h, VBias(Value.Matrix())).view(b, s, nkv, hd);
        if (_layer.SelfAttn.QNorm is { } qn) q = Norm(q, qn);
        if (_layer.SelfAttn.KNorm is { } kn) k = Norm(k, kn);
        q = RotaryEmbedding.Apply(q.transpose(1, 2), cos, sin);
        k = RotaryEmbedding.Apply(k.transpose(1, 2), cos, sin);
        v = v.transpose(1, 2);
        if (Key is not null)
        {
            q = matmul(q, Key.InverseTranspose());
            k = matmul(k, Key.Matrix());
        }
        if (quantize && _o.KvCache is { } kv)
        {
            int g = Math.Min(kv.GroupSize, hd);
            if (kv.QuantizesKeys) k = StraightThroughQuant.FakeQuant(k, kv.KBits, !kv.Asymmetric, g, LacMax(FlatQuantOnline.KCache), LacMin(FlatQuantOnline.KCache));
            if (kv.QuantizesValues) v = StraightThroughQuant.FakeQuant(v, kv.VBits, !kv.Asymmetric, g, LacMax(FlatQuantOnline.VCache), LacMin(FlatQuantOnline.VCache));
        }
        if (nh != nkv)
        {
            k = k.repeat_interleave(nh / nkv, dim: 1);
            v = v.repeat_interleave(nh / nkv, dim: 1);
        }
        Tensor attn = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: s > 1);
        Tensor merged = attn.transpose(1, 2).reshape(b, s, nh * hd);
        merged = matmul(Heads.Matrix().t(), merged.reshape(-1, nh, hd)).reshape(b, s, nh * hd);
        merged = Act(merged, FlatQuantOnline.O, quantize);
        Tensor h2 = x + L("self_attn.o_proj", merged, _b["self_attn.o_proj"]);

        Tensor m = Act(GateUp.Apply(Norm(h2, _layer.PostAttentionLayerNorm)), FlatQuantOnline.GateUp, quantize);
        Tensor a = nn.functional.silu(L("mlp.gate_proj", m, _b["mlp.gate_proj"])) * L("mlp.up_proj", m, _b["mlp.up_proj"]);
        a = Act(Down.Apply(a), FlatQuantOnline.Down, quantize);
        return (h2 + L("mlp.down_proj", a, _b["mlp.down_proj"])).MoveToOuterDisposeScope();
    }

    /// <summary>Per-channel max|x| of the three transformed inputs of the float layer (for the add_diag init).</summary>
    public (Tensor Qkv, Tensor GateUp, Tensor Down) InputAbsMax(Tensor x, Tensor cos, Tensor sin)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        static Tensor ColumnAbsMax(Tensor t) => t.abs().reshape(-1, t.shape[^1]).amax([0]);
        var dtype = _layer.InputLayerNorm.Weight.dtype;
        Tensor qkv = ColumnAbsMax(Norm(x, _layer.InputLayerNorm));
        Tensor attn = _layer.SelfAttn.Forward(_layer.InputLayerNorm.forward(x.to(dtype)), cos.to(dtype), sin.to(dtype), null, _layer.Index);
        Tensor m = Norm(x + attn.to(ScalarType.Float32), _layer.PostAttentionLayerNorm);
        Tensor a = nn.functional.silu(nn.functional.linear(m, _w["mlp.gate_proj"], _b["mlp.gate_proj"])) *
                   nn.functional.linear(m, _w["mlp.up_proj"], _b["mlp.up_proj"]);
        return (qkv.MoveToOuterDisposeScope(), ColumnAbsMax(m).MoveToOuterDisposeScope(), ColumnAbsMax(a).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Folds the trained parameters into the decoder layer: add_diag scales into input_layernorm, post_attention_layernorm
    /// and up_proj; M⁻ᵀ, LWC clipping and the V transform into the weights (which are left unquantized here). Installs
    /// the online part (Kronecker pairs, head mixing, K transform, LAC quantizers) and returns it with the merged
    /// float32 weights, which the caller quantizes (RTN or GPTQ). With <see cref="FlatQuantOptions.HalfPrecisionOnline"/>
    /// the online matrices are rounded to fp16 first and the weights fold the exact inverse of the rounded matrices.
    /// </summary>
    public (FlatQuantOnline Online, Dictionary<string, Tensor> Weights) Reparameterize(FlatQuantRuntime runtime)
    {
        using var _ = no_grad();
        Tensor Online(Tensor t) => (_o.HalfPrecisionOnline ? t.to(ScalarType.Float16).to(ScalarType.Float32) : t.clone()).DetachFromDisposeScope();
        Tensor Round(Tensor t) => _o.HalfPrecisionOnline ? t.to(ScalarType.Float16).to(ScalarType.Float32) : t;
        var online = new Dictionary<string, Tensor>();
        using (var scope = NewDisposeScope())
        {
            foreach (var (slot, t) in new[] { (FlatQuantOnline.Qkv, Qkv), (FlatQuantOnline.GateUp, GateUp), (FlatQuantOnline.Down, Down) })
            {
                t.Left.Freeze(Round);
                t.Right.Freeze(Round);
                online[slot + ".left"] = t.Left.Matrix().detach().clone().DetachFromDisposeScope();
                online[slot + ".right"] = t.Right.Matrix().detach().clone().DetachFromDisposeScope();
            }
            Heads.Freeze(Round);
            online[FlatQuantOnline.O + ".heads"] = Heads.Matrix().detach().clone().DetachFromDisposeScope();
            // V is folded into v_proj/o_proj only (never stored online): freezing at full precision keeps it exact.
            Value.Freeze(t => t);
            if (Key is not null)
            {
                Key.Freeze(Round);
                online[FlatQuantOnline.KCache + ".transform"] = Key.Matrix().detach().clone().DetachFromDisposeScope();
            }
            foreach (var (slot, (mx, mn)) in _lac)
            {
                online[slot + ".clip_max"] = Online(sigmoid(mx));
                online[slot + ".clip_min"] = Online(sigmoid(mn));
            }
        }

        var merged = new Dictionary<string, Tensor>();
        using (var scope = NewDisposeScope())
        {
            foreach (var (n, t) in TransformedWeights()) merged[n] = t.detach().DetachFromDisposeScope();
            Tensor? vBias = VBias(Value.Matrix());
            var attn = _layer.SelfAttn;
            var mlp = _layer.Mlp;
            FoldIntoNorm(_layer.InputLayerNorm, Qkv.Diag);
            FoldIntoNorm(_layer.PostAttentionLayerNorm, GateUp.Diag);
            if (Down.Diag is not null)
            {
                var up = merged["mlp.up_proj"];
                merged["mlp.up_proj"] = (up * Down.Diag.detach().unsqueeze(1)).DetachFromDisposeScope();
                up.Dispose();
                if (mlp.UpProj.Bias is { } ub) mlp.UpProj.ReplaceBias((ub.to(ScalarType.Float32) * Down.Diag.detach().to(ub.device)).to(ub.dtype).DetachFromDisposeScope());
            }
            if (vBias is not null) attn.VProj.ReplaceBias(vBias.to(attn.VProj.Bias!.dtype).DetachFromDisposeScope());
            foreach (var (name, linear) in _layer.Linears())
                linear.ReplaceWeight(merged[name].to(linear.Weight.dtype, linear.Weight.device, copy: true).DetachFromDisposeScope());
        }
        var state = new FlatQuantOnline(_layer.Index, online);
        state.Attach(_layer, runtime);
        return (state, merged);
    }

    private static void FoldIntoNorm(RmsNorm norm, Tensor? diag)
    {
        if (diag is null) return;
        using var scope = NewDisposeScope();
        var w = norm.Weight;
        norm.ReplaceWeight((w.to(ScalarType.Float64) * diag.detach().to(ScalarType.Float64, w.device)).to(w.dtype).DetachFromDisposeScope());
    }

    public void Dispose()
    {
        Qkv.Dispose(); GateUp.Dispose(); Down.Dispose(); Heads.Dispose(); Value.Dispose(); Key?.Dispose();
        foreach (var t in _w.Values) t.Dispose();
        foreach (var t in _b.Values) t?.Dispose();
        foreach (var (mx, mn) in _lwc.Values) { mx.Dispose(); mn.Dispose(); }
        foreach (var (mx, mn) in _lac.Values) { mx.Dispose(); mn.Dispose(); }
    }
}
