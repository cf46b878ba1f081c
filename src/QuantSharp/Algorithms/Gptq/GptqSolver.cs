using System.Globalization;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>
/// GPTQ for one linear layer: quantizes W [out, in] column by column, folding each column's quantization error into
/// the not-yet-quantized columns through the upper Cholesky factor of H⁻¹ (lazy batch updates per block). Runs in
/// float32 on W's device.
/// </summary>
public static class GptqSolver
{
    /// <param name="weight">W [out, in] (any float dtype); not modified.</param>
    /// <param name="hessian">H [in, in], e.g. from <see cref="HessianAccumulator"/>; not modified.</param>
    /// <param name="quantizer">The element/scale rule.</param>
    /// <param name="options">Dampening, ordering, grouping.</param>
    /// <param name="globalScale">NVFP4 global scale to use instead of the one of W (e.g. fused over q/k/v).</param>
    public static GptqResult Quantize(Tensor weight, Tensor hessian, IWeightQuantizer quantizer, GptqOptions? options = null, Tensor? globalScale = null)
    {
        options ??= new GptqOptions();
        string layer = options.LayerName;
        Validate(weight, hessian, options, layer);
        int columns = checked((int)weight.shape[1]);
        int groupSize = GroupSizeOf(quantizer.Spec, columns, layer);
        int groups = columns / groupSize;
        bool lazyGroups = !options.StaticGroups && groups > 1;
        if (lazyGroups && options.ActOrder && !options.GroupAwareReorder)
            throw new QuantSharpException(
                $"layer '{layer}': act-order with non-static groups would compute a group's parameters before most of its columns " +
                "have received their GPTQ updates; use static groups (the MR-GPTQ default) or group-aware reordering.");

        var warnings = new List<string>();
        void Warn(string message)
        {
            warnings.Add(message);
            options.OnWarning?.Invoke(message);
        }

        using var scope = NewDisposeScope();
        Tensor w = weight.detach().to(ScalarType.Float32).clone();
        Tensor h = hessian.detach().to(ScalarType.Float32).to(w.device).clone();
        if (!h.isfinite().all().item<bool>())
            throw new QuantSharpException($"layer '{layer}': its Hessian contains NaN or infinite values (check the calibration inputs).");
        if (!w.isfinite().all().item<bool>())
            throw new QuantSharpException($"layer '{layer}': its weight contains NaN or infinite values.");

        // Inputs that never fired carry no information: give them a unit diagonal (so H stays invertible) and a zero weight.
        Tensor dead = h.diagonal().eq(0);
        int deadColumns = checked((int)dead.sum().item<long>());
        if (deadColumns > 0)
        {
            h.diagonal().add_(dead.to(ScalarType.Float32));
            w.mul_(dead.logical_not().to(ScalarType.Float32).unsqueeze(0));
        }

        Tensor? global = globalScale?.to(ScalarType.Float32).to(w.device).reshape(1) ?? quantizer.ComputeGlobalScale(w);
        // Static groups: parameters of the original column groups, fixed before any reordering or update.
        GroupParams? staticParams = lazyGroups ? null : quantizer.ComputeParams(w, global, layer);

        Tensor? permutation = options.GroupAwareReorder ? ColumnOrder.GroupAware(h.diagonal(), groupSize)
            : options.ActOrder ? ColumnOrder.ActOrder(h.diagonal())
            : null;
        long[] order = permutation is null ? Enumerable.Range(0, columns).Select(i => (long)i).ToArray() : permutation.cpu().data<long>().ToArray();
        if (permutation is not null)
        {
            // Free each unpermuted copy at once: for wide layers every [in, in] copy is close to a gigabyte.
            Tensor rowsPermuted = h.index_select(0, permutation);
            h.Dispose();
            h = rowsPermuted.index_select(1, permutation);
            rowsPermuted.Dispose();
            Tensor permutedWeight = w.index_select(1, permutation);
            w.Dispose();
            w = permutedWeight;
        }

        HessianInverse.Factor factor = HessianInverse.Compute(h, options.RelDamp, options.MaxDampRetries, layer, Warn);
        Tensor reference = w.clone();
        Tensor quantized = zeros_like(w);
        var lazyParams = new GroupParams?[lazyGroups ? groups : 0];
        try
        {
            // Classic groups are computed from the block copy, so a block must hold whole groups.
            int blockSize = lazyGroups ? groupSize * Math.Max(1, options.BlockSize / groupSize) : options.BlockSize;
            for (int c1 = 0; c1 < columns; c1 += blockSize)
            {
                int c2 = Math.Min(c1 + blockSize, columns);
                SolveBlock(w, quantized, factor.Upper, c1, c2, order, groupSize, quantizer, staticParams, lazyParams, global, layer);
            }

            double relativeError = RelativeError(quantized, reference, h, factor.Damp);
            if (permutation is not null) quantized = quantized.index_select(1, permutation.argsort());
            GroupParams parameters = staticParams ?? GroupParams.ConcatGroups(lazyParams.Select(p => p!).ToArray());
            return new GptqResult(quantized.MoveToOuterDisposeScope(), parameters.MoveToOuterDisposeScope(), permutation?.MoveToOuterDisposeScope(),
                relativeError, factor.Damp, factor.Retries, deadColumns, warnings);
        }
        finally
        {
            foreach (GroupParams? p in lazyParams) p?.Dispose();
        }
    }

    /// <summary>Quantizes processing positions [c1, c2) and pushes their errors onto the columns after c2.</summary>
    private static void SolveBlock(Tensor w, Tensor quantized, Tensor upper, int c1, int c2, long[] order, int groupSize,
        IWeightQuantizer quantizer, GroupParams? staticParams, GroupParams?[] lazyParams, Tensor? global, string layer)
    {
        using var blockScope = NewDisposeScope();
        long rows = w.shape[0], columns = w.shape[1];
        int count = c2 - c1;
        Tensor block = w.narrow(1, c1, count).clone();
        Tensor blockUpper = upper.narrow(0, c1, count).narrow(1, c1, count);
        Tensor errors = zeros(rows, count, ScalarType.Float32, w.device);
        for (int i = 0; i < count; i++)
        {
            using var columnScope = NewDisposeScope();
            int original = checked((int)order[c1 + i]);
            int group = original / groupSize;
            GroupParams p;
            int firstColumn;
            if (staticParams is not null)
            {
                p = staticParams;
                firstColumn = original;
            }
            else
            {
                // First column of a group (groups are contiguous in processing order here): its columns
                // block[:, i .. i+groupSize) already carry every update made so far.
                lazyParams[group] ??= quantizer.ComputeParams(block.narrow(1, i, groupSize), global, layer).DetachFromDisposeScope();
                p = lazyParams[group]!;
                firstColumn = original - group * groupSize;
            }
            Tensor column = block.narrow(1, i, 1);
            Tensor q = quantizer.QuantizeDequantize(column, p, firstColumn);
            quantized.narrow(1, c1 + i, 1).copy_(q);
            Tensor error = column.sub(q).div_(blockUpper.narrow(0, i, 1).narrow(1, i, 1));
            block.narrow(1, i, count - i).addr_(error.squeeze(1), blockUpper[i].narrow(0, i, count - i), alpha: -1);
            errors.narrow(1, i, 1).copy_(error);
        }
        if (c2 < columns)
            w.narrow(1, c2, columns - c2).sub_(errors.matmul(upper.narrow(0, c1, count).narrow(1, c2, columns - c2)));
    }

    /// <summary>
    /// FP-Quant's per-layer "Relative MSE error" mean((Q−W)H_d ∘ (Q−W)) / (mean(W H_d ∘ W) + 1e-6), with H_d the
    /// dampened Hessian the solve used. H_d = H + damp·I is not materialised: x H_d xᵀ summed = x H xᵀ summed + damp·Σx².
    /// </summary>
    public static double RelativeError(Tensor quantized, Tensor reference, Tensor hessian, double damp = 0)
    {
        using var scope = NewDisposeScope();
        double count = reference.numel();
        Tensor delta = quantized.sub(reference);
        Tensor numerator = delta.matmul(hessian).mul_(delta).sum().add_(delta.square().sum().mul_(damp)).div_(count);
        Tensor denominator = reference.matmul(hessian).mul_(reference).sum().add_(reference.square().sum().mul_(damp)).div_(count).add_(1e-6);
        return numerator.div(denominator).item<float>();
    }

    private static int GroupSizeOf(QuantSpec spec, int columns, string layer)
    {
        if (spec.GroupSize <= 0) return columns;
        if (columns % spec.GroupSize != 0)
            throw new QuantSharpException(string.Create(CultureInfo.InvariantCulture,
                $"layer '{layer}': group size {spec.GroupSize} does not divide its {columns} input columns (format {spec.FormatName})."));
        return spec.GroupSize;
    }

    private static void Validate(Tensor weight, Tensor hessian, GptqOptions options, string layer)
    {
        if (weight.dim() != 2)
            throw new QuantSharpException($"layer '{layer}': GPTQ expects a 2-D weight [out, in], got [{string.Join(", ", weight.shape)}].");
        long columns = weight.shape[1];
        if (hessian.dim() != 2 || hessian.shape[0] != columns || hessian.shape[1] != columns)
            throw new QuantSharpException($"layer '{layer}': Hessian [{string.Join(", ", hessian.shape)}] does not match the weight's {columns} input columns.");
        if (options.RelDamp < 0 || double.IsNaN(options.RelDamp))
            throw new QuantSharpException($"layer '{layer}': relative dampening {options.RelDamp} must be ≥ 0.");
        if (options.BlockSize <= 0)
            throw new QuantSharpException($"layer '{layer}': GPTQ block size {options.BlockSize} must be positive.");
        if (options.MaxDampRetries < 0)
            throw new QuantSharpException($"layer '{layer}': damp retries {options.MaxDampRetries} must be ≥ 0.");
    }
}
