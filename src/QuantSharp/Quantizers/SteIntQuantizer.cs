using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Integer fake quantization written with differentiable operations for trained algorithms (TEQ, AutoRound): the
/// rounding passes gradients straight through, the scale follows the (scaled) group min/max. With no offsets and
/// unit min/max factors it computes exactly what <see cref="IntWeightQuantizer"/> does (the same <see cref="IntGrid"/>
/// rules, in the same order of operations), which the tests check bit for bit.
/// </summary>
public static class SteIntQuantizer
{
    /// <summary>round(x) in the forward pass, identity in the backward pass. round(x) − x is exact in float32, so the sum is round(x) exactly.</summary>
    public static Tensor RoundSte(Tensor x) => x.requires_grad ? x + (x.round() - x).detach() : x.round();

    /// <summary>Groups per row of a [rows, columns] weight under <paramref name="spec"/>.</summary>
    public static int GroupSizeOf(QuantSpec spec, long columns) => spec.GroupSize is QuantSpec.PerChannel or QuantSpec.PerTensor ? (int)columns : spec.GroupSize;

    /// <summary>
    /// Dequantized weight [rows, columns] float32 and its group parameters. <paramref name="offset"/> (AutoRound's V,
    /// shape of <paramref name="w"/>) is added to w/scale before rounding; <paramref name="minFactor"/> and
    /// <paramref name="maxFactor"/> ([rows, groups, 1]) shrink the group's range. The returned parameters are detached.
    /// </summary>
    public static (Tensor Dequantized, GroupParams Params) FakeQuantize(Tensor w, QuantSpec spec,
        Tensor? offset = null, Tensor? minFactor = null, Tensor? maxFactor = null)
    {
        if (spec.Format != QuantFormat.Int) throw new ArgumentException("integer formats only", nameof(spec));
        if (spec.GroupSize == QuantSpec.PerTensor) throw new QuantSharpException("trained rounding needs per-channel or per-group scales, not --w-group-size 0.");
        using var scope = NewDisposeScope();
        long rows = w.shape[0], columns = w.shape[1];
        int gs = GroupSizeOf(spec, columns);
        if (columns % gs != 0) throw new QuantSharpException($"--w-group-size {gs} does not divide {columns} input columns.");
        Tensor g = w.to(float32).reshape(rows, columns / gs, gs);
        Tensor min = g.amin([-1], keepdim: true), max = g.amax([-1], keepdim: true);
        var (qMin, qMax) = IntGrid.Range(spec.Bits, spec.Symmetric);
        Tensor scale, q, dq;
        Tensor? zero = null;
        if (spec.Symmetric)
        {
            if (minFactor is not null) min = min * minFactor;
            if (maxFactor is not null) max = max * maxFactor;
            Tensor absMax = maximum(min.neg(), max).abs();
            scale = absMax.mul(2f).div((float)((1 << spec.Bits) - 1));
            scale = where(scale.eq(0), ones_like(scale), scale);
            Tensor x = g.div(scale);
            if (offset is not null) x = x + offset.reshape(g.shape);
            q = RoundSte(x).clamp(qMin, qMax);
            dq = q.mul(scale);
        }
        else
        {
            Tensor lo = min.clamp_max(0f), hi = max.clamp_min(0f);
            if (minFactor is not null) lo = lo * minFactor;
            if (maxFactor is not null) hi = hi * maxFactor;
            scale = hi.sub(lo).div((float)qMax);
            scale = where(scale.eq(0), ones_like(scale), scale);
            zero = RoundSte(lo.neg().div(scale)).clamp(0, qMax);
            Tensor x = g.div(scale).add(zero);
            if (offset is not null) x = x + offset.reshape(g.shape);
            q = RoundSte(x).clamp(qMin, qMax);
            dq = q.sub(zero).mul(scale);
        }
        var p = new GroupParams(scale.squeeze(-1).detach().clone(), zero?.squeeze(-1).detach().clone(), null, null, gs, (int)columns);
        return (dq.reshape(rows, columns).MoveToOuterDisposeScope(), p.MoveToOuterDisposeScope());
    }
}
