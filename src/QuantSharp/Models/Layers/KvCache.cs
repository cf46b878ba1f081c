using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// Keys and values of past positions, per layer, [batch, kv_heads, seq, head_dim]: dense tensors, or, for layers whose
/// attention hook quantizes K/V (<see cref="IKvCacheCodec"/>) when <see cref="StoresCodes"/>, the hook's codes.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;
    private readonly KvStored?[] _storedKeys;
    private readonly KvStored?[] _storedValues;

    /// <param name="storeCodes">keep quantized K/V as codes (e.g. two 4-bit codes per byte plus group scales) where a layer's hook can encode them.</param>
    public KvCache(int layers, bool storeCodes = false)
    {
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
        _storedKeys = new KvStored?[layers];
        _storedValues = new KvStored?[layers];
        StoresCodes = storeCodes;
    }

    public bool StoresCodes { get; }

    /// <summary>Number of cached positions before the current step (layer 0 is updated first, so read it before the step).</summary>
    public long Length => LengthOf(0);

    /// <summary>Cached positions of one layer: what that layer's attention must treat as the past.</summary>
    public long LengthOf(int layer) => _keys[layer]?.shape[2] ?? _storedKeys[layer]?.Length ?? 0;

    /// <summary>Bytes held by the cache (dense tensors and stored codes).</summary>
    public long Bytes =>
        _keys.Concat(_values).Sum(t => t is null ? 0 : t.numel() * t.ElementSize) +
        _storedKeys.Concat(_storedValues).Sum(s => s?.Bytes ?? 0);

    /// <summary>
    /// Appends this step's encoded k/v for a layer and returns the decoded full k/v (this step's and all earlier ones).
    /// </summary>
    public (Tensor K, Tensor V) AppendEncoded(int layer, IKvCacheCodec codec, Tensor k, Tensor v)
    {
        if (_keys[layer] is not null) throw new InvalidOperationException($"layer {layer} already caches dense keys");
        using var scope = NewDisposeScope();
        var dtype = k.dtype;
        _storedKeys[layer] = Grow(_storedKeys[layer], codec.Encode(k, keys: true));
        _storedValues[layer] = Grow(_storedValues[layer], codec.Encode(v, keys: false));
        Tensor fullK = codec.Decode(_storedKeys[layer]!, dtype, keys: true);
        Tensor fullV = codec.Decode(_storedValues[layer]!, dtype, keys: false);
        return (fullK.MoveToOuterDisposeScope(), fullV.MoveToOuterDisposeScope());

        static KvStored Grow(KvStored? old, KvStored step)
        {
            if (old is null) return step.DetachFromDisposeScope();
            var grown = old.Concat(step).DetachFromDisposeScope();
            old.Dispose();
            step.Dispose();
            return grown;
        }
    }

    /// <summary>Appends this step's k/v for a layer and returns the full k/v (the cache keeps its own references).</summary>
    public (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        if (_storedKeys[layer] is not null) throw new InvalidOperationException($"layer {layer} already caches encoded keys");
        Tensor fullK = _keys[layer] is null ? k.alias() : cat([_keys[layer]!, k], dim: 2);
        Tensor fullV = _values[layer] is null ? v.alias() : cat([_values[layer]!, v], dim: 2);
        _keys[layer]?.Dispose();
        _values[layer]?.Dispose();
        _keys[layer] = fullK.alias().DetachFromDisposeScope();
        _values[layer] = fullV.alias().DetachFromDisposeScope();
        return (fullK, fullV);
    }

    /// <summary>
    /// Turns a batch-1 cache into a batch of <paramref name="batch"/> rows that share it (a broadcast view, no copy):
    /// several continuations of one prompt are then scored after a single prefill.
    /// </summary>
    public void ExpandBatch(int batch)
    {
        for (int layer = 0; layer < _keys.Length; layer++)
        {
            _keys[layer] = Expanded(_keys[layer], batch);
            _values[layer] = Expanded(_values[layer], batch);
            _storedKeys[layer] = ExpandedStored(_storedKeys[layer], batch);
            _storedValues[layer] = ExpandedStored(_storedValues[layer], batch);
        }
    }

    private static KvStored? ExpandedStored(KvStored? s, int batch) =>
        s is null ? null : new KvStored(s.Parts.Select(p => Expanded(p, batch)!).ToArray());

    private static Tensor? Expanded(Tensor? t, int batch)
    {
        if (t is null) return null;
        if (t.shape[0] != 1) throw new InvalidOperationException($"only a batch-1 cache can be expanded (batch {t.shape[0]}).");
        var wide = t.expand(batch, -1, -1, -1).DetachFromDisposeScope();
        t.Dispose();
        return wide;
    }

    public void Dispose()
    {
        foreach (var t in _keys) t?.Dispose();
        foreach (var t in _values) t?.Dispose();
        foreach (var s in _storedKeys) s?.Dispose();
        foreach (var s in _storedValues) s?.Dispose();
    }
}
