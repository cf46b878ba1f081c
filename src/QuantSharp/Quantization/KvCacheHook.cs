using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>KV-cache quantization: bits of K and V (16 = keep), group size along head_dim (capped at head_dim), asymmetric or not.</summary>
public sealed record KvCacheSpec(int KBits, int VBits, int GroupSize = 128, bool Asymmetric = true)
{
    public bool QuantizesKeys => KBits < 16;
    public bool QuantizesValues => VBits < 16;

    public void Validate(int headDim)
    {
        foreach (var (flag, bits) in new[] { ("--k-bits", KBits), ("--v-bits", VBits) })
            if (bits != 16 && (bits < Formats.IntGrid.MinBits || bits > Formats.IntGrid.MaxBits))
                throw new QuantSharpException($"{flag} {bits}: expected 2..8, or 16 to keep the cache in the model dtype.");
        int g = Math.Min(GroupSize, headDim);
        if (g <= 0 || headDim % g != 0)
            throw new QuantSharpException($"--kv-group-size {GroupSize} does not divide head_dim {headDim}.");
    }
}

/// <summary>
/// Per-head transforms and fake quantization of the KV cache, run after RoPE: k → k·T (q → q·T⁻ᵀ, so q·kᵀ is
/// unchanged), optionally v → v·R with R orthogonal undone per head on the attention output (QuaRot-style V
/// rotation when it is not folded into v_proj/o_proj), then K and V quantized per token and head in groups along
/// head_dim. The quantized values are what the cache stores, so every later step attends to 4-bit keys/values.
/// </summary>
public sealed class KvCacheHook : IAttentionHook, IKvCacheCodec, IDisposable
{
    private readonly KvCacheSpec _spec;
    private readonly int _headDim;

    /// <param name="keyTransform">T (head_dim²) applied to keys; queries get T⁻ᵀ (float64 inverse).</param>
    /// <param name="valueRotation">orthogonal R applied to values and undone (Rᵀ) on the attention output.</param>
    /// <param name="keyClip">LAC ratios (max, min) of the key quantizer, scalars; null = no clipping.</param>
    public KvCacheHook(KvCacheSpec spec, int headDim, Tensor? keyTransform = null, Tensor? valueRotation = null,
        (Tensor Max, Tensor Min)? keyClip = null, (Tensor Max, Tensor Min)? valueClip = null)
    {
        spec.Validate(headDim);
        _spec = spec;
        _headDim = headDim;
        if (keyTransform is not null)
        {
            KeyTransform = keyTransform.to(ScalarType.Float32).clone().DetachFromDisposeScope();
            QueryTransform = Algorithms.FlatQuant.TransformMatrix.InverseTransposeOf(KeyTransform).DetachFromDisposeScope();
        }
        ValueRotation = valueRotation?.to(ScalarType.Float32).clone().DetachFromDisposeScope();
        KeyClip = keyClip is { } kc ? (kc.Max.to(ScalarType.Float32).clone().DetachFromDisposeScope(), kc.Min.to(ScalarType.Float32).clone().DetachFromDisposeScope()) : null;
        ValueClip = valueClip is { } vc ? (vc.Max.to(ScalarType.Float32).clone().DetachFromDisposeScope(), vc.Min.to(ScalarType.Float32).clone().DetachFromDisposeScope()) : null;
    }

    public KvCacheSpec Spec => _spec;
    public Tensor? KeyTransform { get; }
    public Tensor? QueryTransform { get; }
    public Tensor? ValueRotation { get; }
    public (Tensor Max, Tensor Min)? KeyClip { get; }
    public (Tensor Max, Tensor Min)? ValueClip { get; }

    public (Tensor Q, Tensor K, Tensor V) AfterRope(Tensor q, Tensor k, Tensor v)
    {
        using var scope = NewDisposeScope();
        (q, k, v) = TransformAfterRope(q, k, v);
        k = QuantizeKeys(k);
        v = QuantizeValues(v);
        return (q.MoveToOuterDisposeScope(), k.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    public (Tensor Q, Tensor K, Tensor V) TransformAfterRope(Tensor q, Tensor k, Tensor v)
    {
        using var scope = NewDisposeScope();
        if (KeyTransform is not null)
        {
            q = matmul(q, QueryTransform!.to(q.dtype, q.device));
            k = matmul(k, KeyTransform.to(k.dtype, k.device));
        }
        if (ValueRotation is not null) v = matmul(v, ValueRotation.to(v.dtype, v.device));
        return (q.MoveToOuterDisposeScope(), k.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Stored form of keys or values [b, h, s, head_dim]: a quantized side keeps its codes (two per byte up to 4 bits,
    /// low nibble first) with per-group float32 scales and zero points [b, h, s, groups]; an unquantized side stays dense.
    /// </summary>
    public KvStored Encode(Tensor x, bool keys)
    {
        int bits = keys ? _spec.KBits : _spec.VBits;
        if (bits >= 16) return new KvStored(x.alias());
        using var scope = NewDisposeScope();
        var clip = keys ? KeyClip : ValueClip;
        var (codes, scale, zero, _) = StraightThroughQuant.Codes(x, bits, !_spec.Asymmetric, Math.Min(_spec.GroupSize, _headDim),
            clip?.Max.to(x.device), clip?.Min.to(x.device));
        long[] lead = [x.shape[0], x.shape[1], x.shape[2]];
        Tensor packed = bits <= 4 && _headDim % 2 == 0
            ? codes.slice(-1, 0, _headDim, 2).bitwise_or(codes.slice(-1, 1, _headDim, 2).bitwise_left_shift(4))
            : codes;
        var parts = new List<Tensor> { packed, scale.reshape([.. lead, -1]) };
        if (zero is not null) parts.Add(zero.reshape([.. lead, -1]));
        return new KvStored(parts.Select(p => p.contiguous().MoveToOuterDisposeScope()).ToArray());
    }

    public Tensor Decode(KvStored stored, ScalarType dtype, bool keys)
    {
        int bits = keys ? _spec.KBits : _spec.VBits;
        if (bits >= 16) return stored.Parts[0].alias();
        using var scope = NewDisposeScope();
        Tensor packed = stored.Parts[0];
        Tensor codes = packed.shape[3] * 2 == _headDim
            ? stack([packed.bitwise_and(15), packed.bitwise_right_shift(4)], -1).reshape(packed.shape[0], packed.shape[1], packed.shape[2], _headDim)
            : packed;
        Tensor scale = stored.Parts[1].reshape(-1, 1);
        Tensor? zero = stored.Parts.Length > 2 ? stored.Parts[2].reshape(-1, 1) : null;
        var (qMin, _) = Formats.IntGrid.Range(bits, !_spec.Asymmetric);
        return StraightThroughQuant.Decode(codes, scale, zero, qMin, dtype).MoveToOuterDisposeScope();
    }

    public Tensor BeforeOutput(Tensor merged)
    {
        if (ValueRotation is null) return merged;
        using var scope = NewDisposeScope();
        var shape = merged.shape;
        Tensor heads = merged.reshape(-1, _headDim);
        return matmul(heads, ValueRotation.t().to(merged.dtype, merged.device)).reshape(shape).MoveToOuterDisposeScope();
    }

    public Tensor QuantizeKeys(Tensor k) => _spec.QuantizesKeys
        ? StraightThroughQuant.FakeQuant(k, _spec.KBits, !_spec.Asymmetric, Math.Min(_spec.GroupSize, _headDim), KeyClip?.Max.to(k.device), KeyClip?.Min.to(k.device))
        : k.alias();

    public Tensor QuantizeValues(Tensor v) => _spec.QuantizesValues
        ? StraightThroughQuant.FakeQuant(v, _spec.VBits, !_spec.Asymmetric, Math.Min(_spec.GroupSize, _headDim), ValueClip?.Max.to(v.device), ValueClip?.Min.to(v.device))
        : v.alias();

    public void Dispose()
    {
        KeyTransform?.Dispose();
        QueryTransform?.Dispose();
        ValueRotation?.Dispose();
        KeyClip?.Max.Dispose(); KeyClip?.Min.Dispose();
        ValueClip?.Max.Dispose(); ValueClip?.Min.Dispose();
    }
}
