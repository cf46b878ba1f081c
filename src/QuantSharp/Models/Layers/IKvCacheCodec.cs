using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// An attention hook whose K/V quantization the <see cref="KvCache"/> can store as codes instead of dequantized floats.
/// Attention then runs the hook's transforms, encodes the new keys/values, appends the codes and attends to the
/// decoded full cache: numbers identical to the fake-quantized path, in a fraction of the memory.
/// </summary>
public interface IKvCacheCodec
{
    /// <summary>The hook's transforms of q/k/v after RoPE, without quantization.</summary>
    (Tensor Q, Tensor K, Tensor V) TransformAfterRope(Tensor q, Tensor k, Tensor v);

    /// <summary>The stored form of this step's keys or values [batch, kv_heads, seq, head_dim].</summary>
    KvStored Encode(Tensor x, bool keys);

    /// <summary>The dequantized [batch, kv_heads, seq, head_dim] tensor of a stored form.</summary>
    Tensor Decode(KvStored stored, ScalarType dtype, bool keys);
}

/// <summary>
/// Cached keys or values in some stored form: tensors that all have [batch, kv_heads, seq, …] leading dimensions, so
/// appending a step concatenates each part along dim 2 (e.g. packed codes, group scales, zero points; or one dense tensor).
/// </summary>
public sealed class KvStored : IDisposable
{
    public KvStored(params Tensor[] parts) { Parts = parts; }

    public Tensor[] Parts { get; private set; }
    public long Length => Parts[0].shape[2];
    public long Bytes => Parts.Sum(p => p.numel() * p.ElementSize);

    /// <summary>This followed by <paramref name="next"/> along the sequence (new tensors; both inputs are left as they are).</summary>
    public KvStored Concat(KvStored next)
    {
        if (next.Parts.Length != Parts.Length) throw new ArgumentException("stored forms differ");
        return new KvStored(Parts.Zip(next.Parts, (a, b) => cat([a, b], dim: 2)).ToArray());
    }

    public KvStored DetachFromDisposeScope()
    {
        foreach (var p in Parts) p.DetachFromDisposeScope();
        return this;
    }

    public void Dispose()
    {
        foreach (var p in Parts) p.Dispose();
    }
}
