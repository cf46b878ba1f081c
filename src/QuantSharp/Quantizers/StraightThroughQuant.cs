using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Differentiable fake quantization on the <see cref="IntGrid"/> rules: rounding passes gradients straight through
/// (round(x) − x is detached), so learned transforms and clipping factors see the quantization error. Rows are
/// quantized independently (per token for activations, per output channel for weights, per head group for the KV
/// cache), optionally in groups along the last dimension. Clip ratios (LAC/LWC) shrink the row's min and max before
/// the scale is taken; the same function runs during calibration and at inference, so both see identical numbers.
/// </summary>
public static class StraightThroughQuant
{
    /// <summary>round(x) in the forward pass, identity in the backward pass.</summary>
    public static Tensor RoundSte(Tensor x)
    {
        using var scope = NewDisposeScope();
        return x.add(x.round().sub(x).detach()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Quantize-dequantize x [..., n] in groups of <paramref name="groupSize"/> along the last dimension (≤ 0 or ≥ n:
    /// the whole row). <paramref name="clipMax"/> / <paramref name="clipMin"/> (broadcastable to [rows, 1], values in
    /// (0, 1]) scale the row's max(x, 0) and min(x, 0). Returns x's dtype and shape.
    /// </summary>
    public static Tensor FakeQuant(Tensor x, int bits, bool symmetric, int groupSize = -1, Tensor? clipMax = null, Tensor? clipMin = null)
    {
        using var scope = NewDisposeScope();
        var (rows, scale, zero, qMin, qMax) = RowParams(x, bits, symmetric, groupSize, clipMax, clipMin);
        Tensor dq = zero is null
            ? RoundSte(rows / scale).clamp(qMin, qMax) * scale
            : (RoundSte(rows / scale) + zero).clamp(qMin, qMax).sub(zero) * scale;
        return dq.reshape(x.shape).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The integer codes FakeQuant rounds to, as unsigned values c = q − qMin in [0, 2^bits − 1] (uint8, x's shape) with
    /// the per-group scale and zero point (null when symmetric), both [rows·groups, 1] float32: (c + qMin − zero)·scale
    /// reproduces FakeQuant's output bit for bit. What a quantized KV cache stores.
    /// </summary>
    public static (Tensor Codes, Tensor Scale, Tensor? Zero, int QMin) Codes(Tensor x, int bits, bool symmetric, int groupSize = -1,
        Tensor? clipMax = null, Tensor? clipMin = null)
    {
        using var scope = NewDisposeScope();
        var (rows, scale, zero, qMin, qMax) = RowParams(x.detach(), bits, symmetric, groupSize, clipMax, clipMin);
        Tensor q = zero is null ? (rows / scale).round().clamp(qMin, qMax) : ((rows / scale).round() + zero).clamp(qMin, qMax);
        Tensor codes = q.sub(qMin).to(ScalarType.Byte).reshape(x.shape);
        return (codes.MoveToOuterDisposeScope(), scale.MoveToOuterDisposeScope(), zero?.MoveToOuterDisposeScope(), qMin);
    }

    /// <summary>Inverse of <see cref="Codes"/>: (c + qMin − zero)·scale in x's original shape and the given dtype.</summary>
    public static Tensor Decode(Tensor codes, Tensor scale, Tensor? zero, int qMin, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        Tensor rows = codes.to(ScalarType.Float32).add(qMin).reshape(scale.shape[0], -1);
        Tensor dq = zero is null ? rows * scale : rows.sub(zero) * scale;
        return dq.reshape(codes.shape).to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>One rule for the grouped rows, their (clipped) range, scale and zero point.</summary>
    private static (Tensor Rows, Tensor Scale, Tensor? Zero, int QMin, int QMax) RowParams(Tensor x, int bits, bool symmetric, int groupSize,
        Tensor? clipMax, Tensor? clipMin)
    {
        long n = x.shape[^1];
        long g = groupSize <= 0 || groupSize >= n ? n : groupSize;
        if (n % g != 0) throw new QuantSharpException($"group size {groupSize} does not divide the quantized width {n}.");
        Tensor rows = x.to(ScalarType.Float32).reshape(-1, g);
        Tensor hi = rows.amax([1], keepdim: true).clamp_min(0f);
        Tensor lo = rows.amin([1], keepdim: true).clamp_max(0f);
        if (clipMax is not null) hi = hi * ExpandPerRow(clipMax, rows.shape[0], n / g);
        if (clipMin is not null) lo = lo * ExpandPerRow(clipMin, rows.shape[0], n / g);
        var (qMin, qMax) = IntGrid.Range(bits, symmetric);
        if (symmetric)
        {
            Tensor scale = IntGrid.SymmetricScale(maximum(hi, lo.neg()), bits);
            return (rows, where(scale.eq(0), ones_like(scale), scale), null, qMin, qMax);
        }
        Tensor aScale = IntGrid.AsymmetricScale(lo, hi, bits);
        Tensor zero = lo.detach().neg().div(aScale.detach()).round().clamp(qMin, qMax);
        return (rows, aScale, zero, qMin, qMax);
    }

    /// <summary>A per-row clip ratio given per original row ([rows0, 1] or a scalar) repeated over the row's groups.</summary>
    private static Tensor ExpandPerRow(Tensor ratio, long groupedRows, long groupsPerRow)
    {
        if (ratio.numel() == 1) return ratio.reshape(1, 1).to(ScalarType.Float32);
        Tensor r = ratio.to(ScalarType.Float32).reshape(-1, 1);
        if (r.shape[0] * groupsPerRow != groupedRows)
            throw new ArgumentException($"clip ratio has {r.shape[0]} rows, the input {groupedRows / groupsPerRow}");
        return groupsPerRow == 1 ? r : r.repeat_interleave(groupsPerRow, 0);
    }
}
