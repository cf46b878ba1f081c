using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>Keys and values of past positions, per layer, [batch, kv_heads, seq, head_dim].</summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;

    public KvCache(int layers)
    {
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
    }

    /// <summary>Number of cached positions before the current step (layer 0 is updated first, so read it before the step).</summary>
    public long Length => _keys[0]?.shape[2] ?? 0;

    /// <summary>Cached positions of one layer: what that layer's attention must treat as the past.</summary>
    public long LengthOf(int layer) => _keys[layer]?.shape[2] ?? 0;

    /// <summary>Appends this step's k/v for a layer and returns the full k/v (the cache keeps its own references).</summary>
    public (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
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
        }
    }

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
    }
}
