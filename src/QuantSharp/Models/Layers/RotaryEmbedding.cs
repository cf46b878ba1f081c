using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// RoPE tables. cos/sin are computed in float32 from float32 positions × inverse frequencies (as transformers does)
/// and cast to the compute dtype, then applied with the rotate-half convention.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _invFreq;

    public RotaryEmbedding(RopeConfig rope, int headDim, Device device)
    {
        _invFreq = tensor(rope.InverseFrequencies(headDim), dtype: float32, device: device);
    }

    /// <summary>cos, sin of shape [seq, head_dim] for positions offset..offset+length-1.</summary>
    public (Tensor Cos, Tensor Sin) Table(long offset, long length, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var pos = arange(offset, offset + length, dtype: float32, device: _invFreq.device);
        var freqs = pos.unsqueeze(1) * _invFreq.unsqueeze(0);
        var emb = cat([freqs, freqs], dim: -1);
        var cos = emb.cos().to(dtype).MoveToOuterDisposeScope();
        var sin = emb.sin().to(dtype).MoveToOuterDisposeScope();
        return (cos, sin);
    }

    /// <summary>x [b, heads, seq, d] rotated: x·cos + rotate_half(x)·sin.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], dim: -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }

    public void Dispose() => _invFreq.Dispose();
}
