using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Hqq;

/// <summary>
/// Half-Quadratic Quantization (HQQ, as in Intel Neural Compressor's weight-only HQQ): asymmetric INT parameters whose
/// zero points are optimised without calibration data. Per group, with the inverse scale s = (2^b − 1)/(max − min)
/// (capped at 2·10⁴) and z = −min·s, repeat: W_q = clamp(round(W·s + z)), W_r = (W_q − z)/s, W_e = shrink_p(W − W_r, β)
/// with the generalised soft threshold shrink_p(x) = sign(x)·relu(|x| − |x|^(p−1)/β), z = mean(W_q − (W − W_e)·s) over
/// the group, β ← κ·β; stop once the tensor's mean |W − W_r| stops decreasing. The result is ordinary
/// <see cref="GroupParams"/> (scale 1/s, a float, generally fractional zero point) that <see cref="IntWeightQuantizer"/>
/// applies: value = (clamp(round(x/scale + zero)) − zero)·scale.
/// Differences from INC, all deliberate: groups are consecutive input columns like every other format here (INC's HQQ
/// reshapes the flat weight to [group, −1] and so groups strided output rows of one input column); the zero point of
/// the best iteration is kept (INC returns the one updated after the first non-improving iteration); everything is
/// float32 (INC's solver runs in float16 on CUDA); the weight codes are rounded with the final (quantized) zero and
/// scale, so codes and parameters agree.
/// </summary>
public static class HqqQuantizer
{
    /// <summary>HQQ parameters of <paramref name="w"/> [rows, columns] for an asymmetric INT spec.</summary>
    public static GroupParams ComputeParams(Tensor w, QuantSpec spec, HqqOptions options, string? tensorName = null)
    {
        string name = tensorName ?? "weight";
        if (spec.Format != QuantFormat.Int || spec.Symmetric)
            throw new QuantSharpException($"--method hqq optimises zero points of asymmetric int weights: use --format int --asym (got {spec.FormatName}{(spec.Symmetric ? " symmetric" : "")}).");
        if (w.dim() != 2) throw new QuantSharpException($"tensor '{name}': HQQ expects a 2-D weight, got [{string.Join(", ", w.shape)}].");
        options.Validate();
        int rows = checked((int)w.shape[0]), columns = checked((int)w.shape[1]);
        int groupSize = spec.GroupSize switch
        {
            QuantSpec.PerChannel or QuantSpec.PerTensor => columns,
            var g when columns % g == 0 => g,
            var g => throw new QuantSharpException($"tensor '{name}': --w-group-size {g} does not divide its {columns} input columns (HQQ)."),
        };
        using var scope = NewDisposeScope();
        Tensor x = w.to(ScalarType.Float32);
        Tensor grouped = spec.GroupSize == QuantSpec.PerTensor ? x.reshape(1, 1, -1) : x.reshape(rows, columns / groupSize, groupSize);
        if (!grouped.isfinite().all().item<bool>())
            throw new QuantSharpException($"tensor '{name}': contains NaN or infinite values; cannot compute HQQ parameters.");
        int maxCode = (1 << spec.Bits) - 1;
        Tensor min = grouped.amin([-1], keepdim: true), max = grouped.amax([-1], keepdim: true);
        // Inverse scale, as HQQ works with it (W·s + z); the cap keeps a constant group finite.
        Tensor s = max.sub(min).reciprocal_().mul_(maxCode).clamp_max_(2e4f);
        Tensor z = min.neg().mul(s);
        if (options.RoundInitialZero ?? spec.Bits == 4) z = z.round();
        z = OptimizeZero(grouped, s, z, maxCode, options);

        Tensor scale = s.reciprocal().squeeze(-1);
        Tensor zero = z.squeeze(-1);
        if (options.QuantScale) scale = AffineRoundTrip(scale, options.ScaleQuantGroupSize);
        if (options.QuantZero) zero = AffineRoundTrip(zero, checked((int)zero.numel()));
        return new GroupParams(scale.contiguous(), zero.contiguous(), null, null, groupSize, columns).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The proximal zero-point iterations on [R, G, n] values with [R, G, 1] inverse scales and zeros; returns the
    /// zero of the iteration with the lowest mean |W − W_r| over the tensor.
    /// </summary>
    internal static Tensor OptimizeZero(Tensor grouped, Tensor s, Tensor z, int maxCode, HqqOptions options)
    {
        using var scope = NewDisposeScope();
        double beta = options.Beta, best = double.PositiveInfinity;
        Tensor current = z.clone(), bestZero = z.clone();
        for (int i = 0; i < options.Iterations; i++)
        {
            // One scope per iteration: the temporaries are weight-sized.
            using var step = NewDisposeScope();
            var (next, error) = Step(grouped, s, current, maxCode, beta, options.LpNorm);
            if (!(error < best)) break;
            best = error;
            bestZero.copy_(current);
            current.copy_(next);
            beta *= options.Kappa;
        }
        return bestZero.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One proximal step: the mean |W − W_r| over the tensor with zero <paramref name="z"/>, and the updated zero
    /// mean(W_q − (W − shrink(W − W_r))·s) per group.
    /// </summary>
    internal static (Tensor Zero, double Error) Step(Tensor grouped, Tensor s, Tensor z, int maxCode, double beta, double p)
    {
        using var scope = NewDisposeScope();
        Tensor wq = grouped.mul(s).add_(z).round_().clamp_(0, maxCode);
        Tensor diff = grouped.sub(wq.sub(z).div_(s));
        double error = diff.abs().mean().item<float>();
        Tensor we = Shrink(diff, beta, p);
        Tensor next = wq.sub(grouped.sub(we).mul_(s)).mean([-1], keepdim: true);
        return (next.MoveToOuterDisposeScope(), error);
    }

    /// <summary>The generalised soft threshold sign(x)·relu(|x| − |x|^(p−1)/β) (p = 1: the ordinary one, 1/β).</summary>
    internal static Tensor Shrink(Tensor x, double beta, double p)
    {
        using var scope = NewDisposeScope();
        Tensor a = x.abs();
        Tensor threshold = p == 1 ? torch.full_like(a, 1 / beta) : a.pow(p - 1).div_(beta);
        return x.sign().mul_(a.sub(threshold).relu_()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HQQ's 8-bit meta quantization of scales or zeros, returned dequantized: row-major groups of
    /// <paramref name="groupSize"/> values (a shorter tail keeps its own range), each with s = 255/(max − min) (capped at
    /// 2·10⁴) and unrounded z = −min·s; value = (clamp(round(v·s + z), 0, 255) − z)/s.
    /// </summary>
    internal static Tensor AffineRoundTrip(Tensor values, int groupSize)
    {
        using var scope = NewDisposeScope();
        Tensor flat = values.reshape(-1);
        long n = flat.numel();
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += groupSize)
        {
            Tensor g = flat.narrow(0, start, Math.Min(groupSize, n - start));
            Tensor s = g.max().sub(g.min()).reciprocal_().mul_(255f).clamp_max_(2e4f);
            Tensor z = g.min().neg().mul(s);
            parts.Add(g.mul(s).add_(z).round_().clamp_(0, 255).sub_(z).div_(s));
        }
        return cat(parts.ToArray(), 0).reshape(values.shape).MoveToOuterDisposeScope();
    }
}
