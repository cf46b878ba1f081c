using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Intel Neural Compressor's RTN clip search (use_mse_search, <see cref="ObserverKind.ClipSearch"/>): the ratios
/// r = 1 − i/200 for i = 0..39 (1 down to 0.805) scale every group's range, and the one ratio with the lowest mean
/// squared error over the whole tensor wins (INC picks one ratio per tensor, not per group or row; strictly smaller
/// wins, so a tie keeps the wider range).
/// </summary>
internal static class ClipRatioSearch
{
    public const int Grid = 200;
    public const int Steps = 40;

    /// <summary>The ratio as the float32 value the range is multiplied by.</summary>
    public static float Ratio(int i) => (float)(1.0 - (double)i / Grid);

    /// <param name="grouped">[R, G, n] values.</param>
    /// <param name="paramsOf">Raw (scale, zero) of the range shrunk by a ratio.</param>
    /// <param name="roundTrip">(x, scale, zero) → dequantized x.</param>
    public static float Best(Tensor grouped, Func<float, (Tensor Scale, Tensor? Zero)> paramsOf, Func<Tensor, Tensor, Tensor?, Tensor> roundTrip)
    {
        double best = double.PositiveInfinity;
        float bestRatio = 1f;
        for (int i = 0; i < Steps; i++)
        {
            using var step = NewDisposeScope();
            float r = Ratio(i);
            var (scale, zero) = paramsOf(r);
            // An all-zero group has scale 0 here; the scale rules make it 1, and so does the search (no 0/0).
            scale = torch.where(scale.eq(0), torch.ones_like(scale), scale);
            double error = grouped.sub(roundTrip(grouped, scale, zero)).pow_(2).mean().item<float>();
            if (error < best)
            {
                best = error;
                bestRatio = r;
            }
        }
        return bestRatio;
    }
}
