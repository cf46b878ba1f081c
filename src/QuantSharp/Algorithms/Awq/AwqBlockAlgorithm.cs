using QuantSharp.Algorithms.EquivalentScaling;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Awq;

/// <summary>
/// Activation-aware weight quantization, block by block, following Intel Neural Compressor's protocol:
/// <list type="number">
/// <item>one float pass over all calibration batches gives the block outputs (the reference, and, as in INC, the next
/// block's inputs: float, not quantized), each input slot's mean |x| per channel and its Gram matrix XᵀX;</item>
/// <item>per fold point, α over i/20 (i &lt; 20): s = mean|x|^α / w̄^(1−α) (w̄ = mean over rows of |w|/max|w| of its
/// group), clamped to ≥ 1e-4 and divided by √(max s · min s); the consumers get q(W·s)/s and the error is the mean
/// squared error of the whole block output when several linears share the scale (q/k/v, gate/up), or of the linear's
/// own output otherwise (o_proj, down_proj; computed exactly from the Gram matrix); the best s is folded;</item>
/// <item>clip search (llm-awq's rule, INC keeps one ratio per tensor): per weight group, the range shrink
/// 1 − i/20 (i &lt; 10) with the lowest error of that group's contribution to the output, from the diagonal block of
/// the Gram matrix of the scaled inputs; the clipped, quantized weights are recorded.</item>
/// </list>
/// INC measures the clip error with the unscaled inputs; we use the inputs the folded layer really receives (x/s),
/// as llm-awq does.
/// </summary>
public sealed class AwqBlockAlgorithm(AwqOptions options) : IBlockAlgorithm
{
    public AwqOptions Options { get; } = options;

    /// <summary>Block output error per α of the last searched point per slot (tests check the choice is the grid minimum).</summary>
    public Dictionary<string, double[]> LastLosses { get; } = new();

    /// <summary>Chosen α per slot of the last block.</summary>
    public Dictionary<string, double> LastAlphas { get; } = new();

    public void Apply(BlockContext context)
    {
        var points = ScaleFoldPoint.Of(context.Layer, context.ModelConfig, tieGroupedQuery: !Options.Folding);
        var (outputs, meanAbs, grams) = Observe(context);
        try
        {
            var scales = new Dictionary<string, Tensor>();
            if (Options.UseAutoScale)
                foreach (var point in points)
                    scales[point.Slot] = SearchScale(context, point, outputs, meanAbs[point.Slot], grams[point.Slot].Hessian);
            context.NextInputs = outputs;
            outputs = null;
            foreach (var point in points)
                if (scales.TryGetValue(point.Slot, out var t)) point.Fold(context, t);

            if (Options.UseAutoClip)
            {
                foreach (var (name, _) in context.Layer.Linears())
                {
                    using var scope = NewDisposeScope();
                    string slot = LayerwiseQuantizer.SlotOf(name);
                    Tensor gram = grams[slot].Hessian;
                    if (points.FirstOrDefault(p => p.Slot == slot) is { } pt && scales.TryGetValue(slot, out var s))
                    {
                        // The folded layer's inputs are x/s, so their Gram matrix is G ⊘ (s sᵀ).
                        Tensor e = pt.Expand(s);
                        gram = gram.div(e.unsqueeze(1) * e.unsqueeze(0));
                    }
                    var (dq, p) = ClipSearch(context.FloatWeight(name), gram, context.Quantizer, Options, name);
                    context.Record(name, dq.DetachFromDisposeScope(), p.DetachFromDisposeScope());
                }
            }
            foreach (var t in scales.Values) t.Dispose();
        }
        finally
        {
            if (outputs is not null) foreach (var t in outputs) t.Dispose();
            foreach (var t in meanAbs.Values) t.Dispose();
            foreach (var g in grams.Values) g.Dispose();
        }
    }

    /// <summary>Float block outputs, and per slot the mean |x| per channel and the Gram matrix of its input.</summary>
    private static (List<Tensor> Outputs, Dictionary<string, Tensor> MeanAbs, Dictionary<string, HessianAccumulator> Grams) Observe(BlockContext context)
    {
        var sums = new Dictionary<string, Tensor>();
        var tokens = new Dictionary<string, long>();
        var grams = new Dictionary<string, HessianAccumulator>();
        var observed = new List<Models.Layers.DecoderLinear>();
        foreach (var (name, linear) in context.Layer.Linears())
        {
            string slot = LayerwiseQuantizer.SlotOf(name);
            if (grams.ContainsKey(slot)) continue;
            grams[slot] = new HessianAccumulator((int)linear.InFeatures, context.Device, $"model.layers.{context.Layer.Index}.{name}");
            sums[slot] = zeros(linear.InFeatures, float64, context.Device).DetachFromDisposeScope();
            tokens[slot] = 0;
            linear.InputObserver = x =>
            {
                using var scope = NewDisposeScope();
                var flat = x.reshape(-1, x.shape[^1]);
                sums[slot].add_(flat.abs().to(float64).sum([0]));
                tokens[slot] += flat.shape[0];
                grams[slot].Add(flat);
            };
            observed.Add(linear);
        }
        var outputs = new List<Tensor>(context.Inputs.Count);
        try
        {
            for (int i = 0; i < context.Inputs.Count; i++)
            {
                using var scope = NewDisposeScope();
                outputs.Add(context.Forward(context.Input(i)).to(context.Inputs[i].device).DetachFromDisposeScope());
            }
        }
        finally
        {
            foreach (var l in observed) l.InputObserver = null;
        }
        var meanAbs = sums.ToDictionary(kv => kv.Key, kv =>
        {
            var m = kv.Value.div(tokens[kv.Key]).to(float32).DetachFromDisposeScope();
            kv.Value.Dispose();
            return m;
        });
        return (outputs, meanAbs, grams);
    }

    /// <summary>INC's weight statistic: mean over rows of |w| / max|w| of the row's group.</summary>
    internal static Tensor WeightStatistic(Tensor w, int groupSize)
    {
        using var scope = NewDisposeScope();
        long rows = w.shape[0], columns = w.shape[1];
        int gs = groupSize > 0 ? groupSize : (int)columns;
        var a = w.abs().reshape(-1, gs);
        var normalized = a.div(a.amax([1], keepdim: true)).reshape(rows, columns);
        return normalized.mean([0]).MoveToOuterDisposeScope();
    }

    /// <summary>The normalised AWQ scale for one α (in the fold point's width).</summary>
    internal static Tensor ScaleFor(Tensor xMean, Tensor wMean, double alpha, bool duo)
    {
        using var scope = NewDisposeScope();
        Tensor s = duo ? xMean.pow(alpha).div(wMean.pow(1 - alpha)) : xMean.pow(alpha);
        s = s.clamp_min(1e-4);
        s = s.div((s.max() * s.min()).sqrt());
        return s.MoveToOuterDisposeScope();
    }

    private Tensor SearchScale(BlockContext context, ScaleFoldPoint point, List<Tensor> reference, Tensor xMeanColumns, Tensor gram)
    {
        using var scope = NewDisposeScope();
        var weights = point.Consumers.Select(context.FloatWeight).ToArray();
        int gs = context.Quantizer.Spec.GroupSize;
        Tensor wMean = point.Reduce(WeightStatistic(cat(weights, 0), gs)).clamp_min(1e-12f);
        Tensor xMean = point.Reduce(xMeanColumns).clamp_min(1e-12f);
        var losses = new double[Options.Grid];
        double best = double.PositiveInfinity;
        Tensor? bestScale = null;
        var linears = point.Consumers.Select(context.Linear).ToArray();
        try
        {
            for (int i = 0; i < Options.Grid; i++)
            {
                using var step = NewDisposeScope();
                double alpha = (double)i / Options.Grid;
                Tensor s = ScaleFor(xMean, wMean, alpha, Options.DuoScaling);
                Tensor columns = point.Expand(s).unsqueeze(0);
                var candidates = weights.Select(w =>
                {
                    Tensor scaled = w.mul(columns);
                    using var p = context.Quantizer.ComputeParams(scaled);
                    return context.Quantizer.QuantizeDequantize(scaled, p).div(columns);
                }).ToArray();
                double loss;
                if (point.Consumers.Length > 1)
                {
                    for (int k = 0; k < linears.Length; k++) linears[k].WeightOverride = candidates[k].to(context.ModelDType);
                    loss = 0;
                    for (int b = 0; b < context.Inputs.Count; b++)
                    {
                        using var batch = NewDisposeScope();
                        Tensor y = context.Forward(context.Input(b));
                        loss += (y.to(float32) - reference[b].to(context.Device).to(float32)).pow(2).mean().item<float>();
                    }
                    foreach (var l in linears) l.WeightOverride = null;
                }
                else
                {
                    // Mean squared output error of one linear over all tokens: trace(D G Dᵀ)/rows with D = W − Q.
                    Tensor d = weights[0] - candidates[0];
                    loss = (d.matmul(gram) * d).sum().item<float>() / d.shape[0];
                }
                losses[i] = loss;
                if (loss < best)
                {
                    best = loss;
                    bestScale?.Dispose();
                    bestScale = s.detach().clone().DetachFromDisposeScope();
                    LastAlphas[point.Slot] = alpha;
                }
            }
        }
        finally
        {
            foreach (var l in linears) l.WeightOverride = null;
        }
        LastLosses[point.Slot] = losses;
        if (bestScale is null)
            throw new QuantSharpException($"model.layers.{context.Layer.Index}: AWQ scale search for {point.Slot} found no finite loss (NaN or infinite activations?).");
        return bestScale;
    }

    /// <summary>
    /// Per (row, group) shrink of the range [min, max] to [r·min, r·max] over r = 1 − i/grid, keeping the r with the
    /// lowest error dᵀ G_g d of the group's contribution to the output (G_g: the group's diagonal block of XᵀX).
    /// </summary>
    internal static (Tensor Dequantized, GroupParams Params) ClipSearch(Tensor w, Tensor gram, IWeightQuantizer quantizer, AwqOptions options, string name)
    {
        using var scope = NewDisposeScope();
        long rows = w.shape[0], columns = w.shape[1];
        int gs = quantizer.Spec.GroupSize > 0 ? quantizer.Spec.GroupSize : (int)columns;
        long groups = columns / gs;
        Tensor blocks = stack(Enumerable.Range(0, (int)groups).Select(g => gram.narrow(0, g * gs, gs).narrow(1, g * gs, gs)).ToArray());
        Tensor grouped = w.reshape(rows, groups, gs);
        Tensor min = grouped.amin([-1], keepdim: true), max = grouped.amax([-1], keepdim: true);
        Tensor bestErr = full(rows, groups, double.PositiveInfinity, float32, w.device);
        Tensor bestRatio = ones(rows, groups, float32, w.device);
        int steps = Math.Max(1, (int)Math.Round(options.ClipGrid * options.MaxShrink));
        for (int i = 0; i < steps; i++)
        {
            using var step = NewDisposeScope();
            float r = 1f - (float)i / options.ClipGrid;
            Tensor dq = Clipped(w, grouped, min, max, full(rows, groups, 1, r, float32, w.device), quantizer, name, out var p);
            p.Dispose();
            Tensor d = (w - dq).reshape(rows, groups, gs);
            Tensor err = einsum("ogi,gij->ogj", d, blocks).mul(d).sum([-1]);
            Tensor better = err.lt(bestErr);
            bestErr.copy_(where(better, err, bestErr));
            bestRatio.copy_(where(better, full_like(bestRatio, r), bestRatio));
        }
        Tensor result = Clipped(w, grouped, min, max, bestRatio.unsqueeze(-1), quantizer, name, out var final);
        return (result.MoveToOuterDisposeScope(), final.MoveToOuterDisposeScope());
    }

    private static Tensor Clipped(Tensor w, Tensor grouped, Tensor min, Tensor max, Tensor ratio, IWeightQuantizer quantizer, string name, out GroupParams p)
    {
        Tensor clamped = minimum(maximum(grouped, min.mul(ratio)), max.mul(ratio)).reshape(w.shape);
        p = quantizer.ComputeParams(clamped, null, name);
        return quantizer.QuantizeDequantize(w, p);
    }

    public void Dispose() { }
}
