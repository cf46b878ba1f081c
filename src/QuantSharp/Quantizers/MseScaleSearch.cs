using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// FP-Quant's MSE observer: try scales f·s0 for f = 1 − i·0.8/100 (i = 0..99) and keep, per group, the first one with
/// the smallest Σ|x − q(x)|^2.4. The candidates are unrounded float scales (the E4M3/E8M0 rounding is applied to the
/// winner afterwards), exactly as FP-Quant searches. All groups are searched at once; only the 100 factors loop.
/// </summary>
internal static class MseScaleSearch
{
    public const int Steps = 100;
    public const double MaxShrink = 0.8;
    public const double ErrorNorm = 2.4;

    /// <param name="grouped">[R, G, n] values.</param>
    /// <param name="scale0">[R, G, 1] min/max scale.</param>
    /// <param name="zero">[R, G, 1] zero points or null. With the range shrunk at both ends the zero point
    /// round(−f·min / (f·s0)) does not depend on f, so it is kept.</param>
    /// <param name="roundTrip">(x, scale, zero) → dequantized x.</param>
    /// <summary>The shrink factors, as the float32 values the candidates are multiplied by.</summary>
    private static readonly float[] Factors = Enumerable.Range(0, Steps).Select(i => (float)(1 - i * MaxShrink / Steps)).ToArray();

    /// <param name="grid">The quantizer's element grid: on CUDA the search runs as one kernel (<see cref="MseScaleKernel"/>).</param>
    public static Tensor Search(Tensor grouped, Tensor scale0, Tensor? zero, Func<Tensor, Tensor, Tensor?, Tensor> roundTrip, ElementGrid grid)
    {
        if (grid.SupportsKernels && MseScaleKernel.CanRun(grouped))
            return MseScaleKernel.Search(grouped, scale0, zero, grid, Factors, (float)ErrorNorm, () => Search(grouped, scale0, zero, roundTrip));
        return Search(grouped, scale0, zero, roundTrip);
    }

    private static Tensor Search(Tensor grouped, Tensor scale0, Tensor? zero, Func<Tensor, Tensor, Tensor?, Tensor> roundTrip)
    {
        using var scope = NewDisposeScope();
        Tensor best = full_like(scale0, float.PositiveInfinity);
        Tensor bestScale = scale0.clone();
        for (int i = 0; i < Steps; i++)
        {
            using var step = NewDisposeScope();
            Tensor candidate = scale0.mul(Factors[i]);
            Tensor error = grouped.sub(roundTrip(grouped, candidate, zero)).abs_().pow_(ErrorNorm).sum([-1], keepdim: true);
            // Strictly smaller only, so ties keep the earlier (wider) range. A zero-range group gives NaN errors
            // (0/0) and keeps its scale, which the scale rule then handles.
            Tensor better = error.lt(best);
            best.copy_(torch.where(better, error, best));
            bestScale.copy_(torch.where(better, candidate, bestScale));
        }
        return bestScale.MoveToOuterDisposeScope();
    }
}
