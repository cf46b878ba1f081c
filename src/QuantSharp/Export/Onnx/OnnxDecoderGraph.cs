using System.Globalization;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using static QuantSharp.Export.Onnx.OnnxAttribute;
using static TorchSharp.torch;

namespace QuantSharp.Export.Onnx;

/// <summary>
/// The full-sequence decoder as an ONNX graph: input_ids int64 [batch, sequence] → logits float32 [batch, sequence,
/// vocab], built from standard ai.onnx ops plus com.microsoft.MatMulNBits for the decoder linears. It mirrors
/// <see cref="CausalLM.Forward(Tensor, KvCache?)"/> step by step (no KV cache: one pass over the whole window), so
/// the two can be compared logit by logit.
/// </summary>
internal sealed class OnnxDecoderGraph
{
    private readonly OnnxGraph _g = new();
    private readonly Dictionary<string, string> _constants = [];
    private readonly CausalLM _model;
    private readonly ModelConfig _c;
    private readonly OnnxExportOptions _options;

    /// <summary>Weights that went into MatMulNBits, and the bytes they take (B + scales + zero points).</summary>
    public long QuantizedWeights { get; private set; }
    public long QuantizedBytes { get; private set; }

    private OnnxDecoderGraph(CausalLM model, OnnxExportOptions options)
    {
        _model = model;
        _c = model.Config;
        _options = options;
    }

    public static OnnxDecoderGraph Build(CausalLM model, OnnxExportOptions options)
    {
        var b = new OnnxDecoderGraph(model, options);
        b.BuildGraph();
        return b;
    }

    public OnnxGraph Graph => _g;

    private void BuildGraph()
    {
        _g.Inputs.Add(new OnnxValueInfo("input_ids", OnnxDataType.Int64, ["batch", "sequence"]));
        _g.Outputs.Add(new OnnxValueInfo("logits", OnnxDataType.Float, ["batch", "sequence", _c.VocabSize]));

        string idsShape = _g.Add("Shape", "input_ids_shape", ["input_ids"]);
        string seqLen = _g.Add("Gather", "sequence_length", [idsShape, ScalarI64(1)], Of("axis", 0L));
        string positions = _g.Add("Range", "positions", [ScalarI64(0), seqLen, ScalarI64(1)]);
        var (cos, sin) = RotaryTables(positions);
        string mask = CausalMask(positions);

        string embed = _g.Floats("model.embed_tokens.weight", [_c.VocabSize, _c.HiddenSize], FloatsOf(_model.EmbedTokens.Weight));
        string x = _g.Add("Gather", "embeddings", [embed, "input_ids"], Of("axis", 0L));
        foreach (var layer in _model.Layers)
        {
            string p = $"model.layers.{layer.Index}.";
            string attn = Attention(layer, p, RmsNorm(x, layer.InputLayerNorm, p + "input_layernorm"), cos, sin, mask);
            string h = _g.Add("Add", p + "attn_residual", [x, attn]);
            string mlp = Mlp(layer.Mlp, p, RmsNorm(h, layer.PostAttentionLayerNorm, p + "post_attention_layernorm"));
            x = _g.Add("Add", p + "mlp_residual", [h, mlp]);
        }
        string normed = RmsNorm(x, _model.Norm, "model.norm");

        // lm_head as Gemm with transB over [batch·sequence, hidden], so a tied model stores its embedding table once.
        string head = _model.LmHead is null
            ? embed
            : _g.Floats("lm_head.weight", [_c.VocabSize, _c.HiddenSize], FloatsOf(_model.LmHead.Weight));
        string flat = _g.Add("Reshape", "final_hidden_2d", [normed, ConstI64(-1, _c.HiddenSize)]);
        string logits2d = _g.Add("Gemm", "logits_2d", [flat, head], Of("transB", 1L));
        string outShape = _g.Add("Concat", "logits_shape", [idsShape, ConstI64(_c.VocabSize)], Of("axis", 0L));
        _g.Add("Reshape", "logits_reshaped", [logits2d, outShape]);
        _g.NameLastOutput("logits");
    }

    /// <summary>cos/sin [sequence, head_dim] gathered by position from tables precomputed for every position.</summary>
    private (string Cos, string Sin) RotaryTables(string positions)
    {
        var (cos, sin) = _model.Rotary(0, _c.MaxPositionEmbeddings);
        using (cos)
        using (sin)
        {
            long[] dims = [_c.MaxPositionEmbeddings, _c.HeadDim];
            string cosTable = _g.Floats("rope_cos", dims, FloatsOf(cos));
            string sinTable = _g.Floats("rope_sin", dims, FloatsOf(sin));
            return (_g.Add("Gather", "cos", [cosTable, positions], Of("axis", 0L)),
                    _g.Add("Gather", "sin", [sinTable, positions], Of("axis", 0L)));
        }
    }

    /// <summary>Additive mask [sequence, sequence]: 0 where key ≤ query, −inf above the diagonal.</summary>
    private string CausalMask(string positions)
    {
        string rows = _g.Add("Unsqueeze", "query_positions", [positions, ConstI64(1)]);
        string cols = _g.Add("Unsqueeze", "key_positions", [positions, ConstI64(0)]);
        string future = _g.Add("Greater", "future_keys", [cols, rows]);
        return _g.Add("Where", "causal_mask", [future, ScalarF32(float.NegativeInfinity), ScalarF32(0f)]);
    }

    /// <summary>x·rsqrt(mean(x²) + eps)·weight over the last axis, as <see cref="Models.Layers.RmsNorm"/> computes it.</summary>
    private string RmsNorm(string x, RmsNorm norm, string name)
    {
        string weight = _g.Floats(name + ".weight", [norm.Weight.shape[0]], FloatsOf(norm.Weight));
        string squared = _g.Add("Mul", name + "/x2", [x, x]);
        string variance = _g.Add("ReduceMean", name + "/variance", [squared], Of("axes", new long[] { -1 }), Of("keepdims", 1L));
        string shifted = _g.Add("Add", name + "/variance_eps", [variance, ScalarF32((float)norm.Eps)]);
        string inv = _g.Add("Reciprocal", name + "/inv_rms", [_g.Add("Sqrt", name + "/rms", [shifted])]);
        string normalized = _g.Add("Mul", name + "/normalized", [x, inv]);
        return _g.Add("Mul", name, [normalized, weight]);
    }

    private string Attention(DecoderLayer layer, string p, string x, string cos, string sin, string mask)
    {
        var a = layer.SelfAttn;
        int nh = _c.NumHeads, nkv = _c.NumKvHeads, hd = _c.HeadDim, group = nh / nkv;
        string Heads(string projected, int heads, RmsNorm? norm, string name)
        {
            string split = _g.Add("Reshape", name + "/heads", [projected, ConstI64(0, 0, heads, hd)]);
            if (norm is not null) split = RmsNorm(split, norm, name.Replace("_proj", "_norm", StringComparison.Ordinal));
            return _g.Add("Transpose", name + "/bhsd", [split], Of("perm", new long[] { 0, 2, 1, 3 }));
        }
        string q = Rope(Heads(Linear(x, a.QProj, p + "self_attn.q_proj"), nh, a.QNorm, p + "self_attn.q_proj"), cos, sin);
        string k = Rope(Heads(Linear(x, a.KProj, p + "self_attn.k_proj"), nkv, a.KNorm, p + "self_attn.k_proj"), cos, sin);
        string v = Heads(Linear(x, a.VProj, p + "self_attn.v_proj"), nkv, null, p + "self_attn.v_proj");

        // Grouped-query attention: query heads h = kv·group + j share kv head kv (repeat_interleave order). Queries are
        // viewed as [b, kv, group, s, d] and keys/values as [b, kv, 1, s, d]; MatMul broadcasting repeats the kv heads.
        string q5 = _g.Add("Reshape", p + "attn/q_grouped", [q, ConstI64(0, nkv, group, -1, hd)]);
        string k5 = _g.Add("Unsqueeze", p + "attn/k_grouped", [k, ConstI64(2)]);
        string v5 = _g.Add("Unsqueeze", p + "attn/v_grouped", [v, ConstI64(2)]);
        string kT = _g.Add("Transpose", p + "attn/k_t", [k5], Of("perm", new long[] { 0, 1, 2, 4, 3 }));
        string scores = _g.Add("MatMul", p + "attn/scores", [q5, kT]);
        string scaled = _g.Add("Mul", p + "attn/scaled", [scores, ScalarF32((float)(1.0 / Math.Sqrt(hd)))]);
        string masked = _g.Add("Add", p + "attn/masked", [scaled, mask]);
        string probs = _g.Add("Softmax", p + "attn/probs", [masked], Of("axis", -1L));
        string context = _g.Add("MatMul", p + "attn/context", [probs, v5]);
        string heads = _g.Add("Reshape", p + "attn/context_heads", [context, ConstI64(0, nh, -1, hd)]);
        string bshd = _g.Add("Transpose", p + "attn/context_bshd", [heads], Of("perm", new long[] { 0, 2, 1, 3 }));
        string merged = _g.Add("Reshape", p + "attn/merged", [bshd, ConstI64(0, 0, nh * hd)]);
        return Linear(merged, a.OProj, p + "self_attn.o_proj");
    }

    /// <summary>x·cos + rotate_half(x)·sin with rotate_half(x) = [−x2, x1] (the halves of the head dimension).</summary>
    private string Rope(string x, string cos, string sin)
    {
        long half = _c.HeadDim / 2;
        string x1 = _g.Add("Slice", x + "/x1", [x, ConstI64(0), ConstI64(half), ConstI64(-1)]);
        string x2 = _g.Add("Slice", x + "/x2", [x, ConstI64(half), ConstI64(_c.HeadDim), ConstI64(-1)]);
        string rotated = _g.Add("Concat", x + "/rotated", [_g.Add("Neg", x + "/neg_x2", [x2]), x1], Of("axis", -1L));
        string a = _g.Add("Mul", x + "/x_cos", [x, cos]);
        string b = _g.Add("Mul", x + "/rot_sin", [rotated, sin]);
        return _g.Add("Add", x + "/rope", [a, b]);
    }

    private string Mlp(Mlp mlp, string p, string x)
    {
        string gate = Linear(x, mlp.GateProj, p + "mlp.gate_proj");
        string silu = _g.Add("Mul", p + "mlp/silu", [gate, _g.Add("Sigmoid", p + "mlp/gate_sigmoid", [gate])]);
        string up = Linear(x, mlp.UpProj, p + "mlp.up_proj");
        string hidden = _g.Add("Mul", p + "mlp/swiglu", [silu, up]);
        return Linear(hidden, mlp.DownProj, p + "mlp.down_proj");
    }

    /// <summary>y = x·Wᵀ (+ b): MatMulNBits over the quantized weight, or MatMul over a stored Wᵀ for a float export.</summary>
    private string Linear(string x, DecoderLinear linear, string name)
    {
        long n = linear.OutFeatures, k = linear.InFeatures;
        string y;
        if (_options.Float)
        {
            using var scope = NewDisposeScope();
            string wT = _g.Floats(name + ".weight_t", [k, n], FloatsOf(linear.Weight.t()));
            y = _g.Add("MatMul", name, [x, wT]);
        }
        else
        {
            var q = MatMulNBitsWeights.Quantize(linear.Weight, _options, name + ".weight");
            string packed = _g.Initializer(name + ".weight_packed", OnnxDataType.UInt8,
                [q.N, q.KBlocks, MatMulNBitsPacking.BlobSize(q.Bits, q.BlockSize)], q.Packed);
            string scales = _g.Initializer(name + ".weight_scales", OnnxDataType.Float, [q.N, q.KBlocks], MatMulNBitsWeights.AsBytes(q.Scales));
            var inputs = new List<string> { x, packed, scales };
            if (q.ZeroPoints is not null)
                inputs.Add(_g.Initializer(name + ".weight_zero_points", OnnxDataType.UInt8,
                    [q.N, MatMulNBitsPacking.ZeroPointRowBytes(q.KBlocks, q.Bits)], q.ZeroPoints));
            y = _g.AddMicrosoft("MatMulNBits", name, [.. inputs],
                Of("K", k), Of("N", n), Of("bits", (long)q.Bits), Of("block_size", (long)q.BlockSize));
            QuantizedWeights += n * k;
            QuantizedBytes += q.StoredBytes;
        }
        if (linear.Bias is not null)
            y = _g.Add("Add", name + "/bias", [y, _g.Floats(name + ".bias", [n], FloatsOf(linear.Bias))]);
        return y;
    }

    private string ConstI64(params long[] values)
    {
        string key = "i64:" + string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture)));
        if (!_constants.TryGetValue(key, out string? name))
            _constants[key] = name = _g.Int64s("const_i64_" + string.Join("_", values.Select(v => v.ToString(CultureInfo.InvariantCulture).Replace('-', 'm'))), values);
        return name;
    }

    private string ScalarI64(long value)
    {
        string key = "si64:" + value.ToString(CultureInfo.InvariantCulture);
        if (!_constants.TryGetValue(key, out string? name))
            _constants[key] = name = _g.ScalarInt64("scalar_i64_" + value.ToString(CultureInfo.InvariantCulture), value);
        return name;
    }

    private string ScalarF32(float value)
    {
        string key = "sf32:" + value.ToString("R", CultureInfo.InvariantCulture);
        if (!_constants.TryGetValue(key, out string? name))
            _constants[key] = name = _g.ScalarFloat("scalar_f32_" + _constants.Count.ToString(CultureInfo.InvariantCulture), value);
        return name;
    }

    private static float[] FloatsOf(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(float32, CPU).contiguous().data<float>().ToArray();
    }
}
