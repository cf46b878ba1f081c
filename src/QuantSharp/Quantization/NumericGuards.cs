using QuantSharp.Models.Layers;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// NaN/Inf checks at the points where they would otherwise spread silently: a layer's weights before they are
/// quantized (a NaN weight gives NaN scales for its whole group) and the calibration activations between layers (one
/// NaN poisons every Hessian after it). Each failure names the tensor or layer.
/// </summary>
internal static class NumericGuards
{
    public static void CheckWeights(DecoderLayer layer)
    {
        foreach (var (name, linear) in layer.Linears())
        {
            using var scope = NewDisposeScope();
            Tensor bad = linear.Weight.isfinite().logical_not();
            long count = bad.sum().item<long>();
            if (count == 0) continue;
            var first = bad.nonzero()[0].cpu().data<long>().ToArray();
            throw new QuantSharpException($"tensor 'model.layers.{layer.Index}.{name}.weight': {count} NaN or infinite value(s), " +
                $"the first at [{string.Join(", ", first)}]; the checkpoint is damaged or was saved after a diverged training step.");
        }
    }

    public static void CheckActivations(IReadOnlyList<Tensor> batches, string where)
    {
        for (int b = 0; b < batches.Count; b++)
        {
            using var scope = NewDisposeScope();
            if (batches[b].isfinite().all().item<bool>()) continue;
            long count = batches[b].isfinite().logical_not().sum().item<long>();
            throw new QuantSharpException($"calibration activations: {where} has {count} NaN or infinite value(s) in batch {b} " +
                "(overflow in a low-precision dtype? try --dtype fp32).");
        }
    }
}
