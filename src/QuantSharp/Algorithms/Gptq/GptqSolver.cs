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
        var results = QuantizeShared([weight], hessian, quantizer, options, [globalScale]);
        return results[0];
    }

    /// <summary>
    /// Quantizes several weights that read the same input (q/k/v, gate/up) against their one Hessian in a single solve:
    /// their rows are stacked, so H is factorised once and the column loop runs once. Rows never interact in GPTQ, so
    /// each result equals a separate solve's. Every weight keeps its own parameters (and NVFP global scale). Classic
    /// (non-static) groups compute parameters from the stacked block, so there the weights are solved one by one.
    /// </summary>
    /// <param name="consumeHessian">The caller hands <paramref name="hessian"/> over (float32, on the weights' device):
    /// the solve works in it and may free it early instead of cloning it, which saves one [in, in] copy (3 GB for a
    /// 28k-wide down_proj). The caller must not read it afterwards.</param>
    public static IReadOnlyList<GptqResult> QuantizeShared(IReadOnlyList<Tensor> weights, Tensor hessian, IWeightQuantizer quantizer,
        GptqOptions? options, IReadOnlyList<Tensor?> globalScales, bool consumeHessian = false)
    {
        options ??= new GptqOptions();
        if (weights.Count == 0 || weights.Count != globalScales.Count)
            throw new ArgumentException("one global scale (or null) per weight is needed", nameof(globalScales));
        string layer = options.LayerName;
        foreach (var wi in weights) Validate(wi, hessian, options, layer);
        int columns = checked((int)weights[0].shape[1]);
        int groupSize = GroupSizeOf(quantizer.Spec, columns, layer);
        int groups = columns / groupSize;
        bool lazyGroups = !options.StaticGroups && groups > 1;
        if (lazyGroups && options.ActOrder && !options.GroupAwareReorder)
            throw new QuantSharpException(
                $"layer '{layer}': act-order with non-static groups would compute a group's parameters before most of its columns " +
                "have received their GPTQ updates; use static groups (the MR-GPTQ default) or group-aware reordering.");
        if (lazyGroups && weights.Count > 1)
            return weights.Select((wi, i) => QuantizeShared([wi], hessian, quantizer, options, [globalScales[i]])[0]).ToList();

        var warnings = new List<string>();
        void Warn(string message)
        {
            warnings.Add(message);
            options.OnWarning?.Invoke(message);
        }

        using var scope = NewDisposeScope();
        var parts = weights.Select(wi => wi.detach().to(ScalarType.Float32).clone()).ToList();
        bool inPlace = consumeHessian && hessian.dtype == ScalarType.Float32 && Backend.Devices.Same(hessian.device, parts[0].device);
        Tensor h = inPlace ? hessian : hessian.detach().to(ScalarType.Float32).to(parts[0].device).clone();
        if (!h.isfinite().all().item<bool>())
            throw new QuantSharpException($"layer '{layer}': its Hessian contains NaN or infinite values (check the calibration inputs).");
        if (parts.Any(p => !p.isfinite().all().item<bool>()))
            throw new QuantSharpException($"layer '{layer}': its weight contains NaN or infinite values.");

        // Inputs that never fired carry no information: give them a unit diagonal (so H stays invertible) and a zero weight.
        Tensor dead = h.diagonal().eq(0);
        int deadColumns = checked((int)dead.sum().item<long>());
        if (deadColumns > 0)
        {
            h.diagonal().add_(dead.to(ScalarType.Float32));
            foreach (var p in parts) p.mul_(dead.logical_not().to(ScalarType.Float32).unsqueeze(0));
        }

        // Static groups: parameters of the original column groups, fixed before any reordering or update, per weight.
        GroupParams[]? staticParts = lazyGroups ? null : parts.Select((p, i) =>
            quantizer.ComputeParams(p, globalScales[i]?.to(ScalarType.Float32).to(p.device).reshape(1) ?? quantizer.ComputeGlobalScale(p), layer)).ToArray();
        Tensor? global = lazyGroups ? (globalScales[0]?.to(ScalarType.Float32).to(parts[0].device).reshape(1) ?? quantizer.ComputeGlobalScale(parts[0])) : null;
        long[] rowCounts = parts.Select(p => p.shape[0]).ToArray();
        GroupParams? staticParams = staticParts is null ? null : staticParts.Length == 1 ? staticParts[0] : StackRows(staticParts, rowCounts);
        Tensor w = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 0);

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
            // With static parameters the whole block's column loop can run as one CUDA kernel.
            Tensor? groupOfPosition = staticParams is not null && options.UseCudaKernel && quantizer.Grid.SupportsKernels && GptqBlockKernel.CanRun(w, blockSize)
                ? tensor(order.Select(o => o / groupSize).ToArray(), ScalarType.Int64, w.device) : null;
            for (int c1 = 0; c1 < columns; c1 += blockSize)
            {
                int c2 = Math.Min(c1 + blockSize, columns);
                if (groupOfPosition is not null)
                    SolveBlockFused(w, quantized, factor.Upper, c1, c2, groupOfPosition, staticParams!, quantizer.Grid);
                else
                    SolveBlock(w, quantized, factor.Upper, c1, c2, order, groupSize, quantizer, staticParams, lazyParams, global, layer);
            }

            var results = new List<GptqResult>(parts.Count);
            long row = 0;
            Tensor? inverse = permutation?.argsort();
            for (int i = 0; i < parts.Count; i++)
            {
                Tensor q = quantized.narrow(0, row, rowCounts[i]), reff = reference.narrow(0, row, rowCounts[i]);
                double relativeError = RelativeError(q, reff, h, factor.Damp);
                Tensor result = inverse is null ? q.clone() : q.index_select(1, inverse);
                GroupParams parameters = staticParts is not null ? staticParts[i] : GroupParams.ConcatGroups(lazyParams.Select(p => p!).ToArray());
                results.Add(new GptqResult(result.MoveToOuterDisposeScope(), parameters.MoveToOuterDisposeScope(),
                    permutation?.clone().MoveToOuterDisposeScope(), relativeError, factor.Damp, factor.Retries, deadColumns, warnings));
                row += rowCounts[i];
            }
            return results;
        }
        finally
        {
            foreach (GroupParams? p in lazyParams) p?.Dispose();
            if (staticParams is not null && staticParts is { Length: > 1 }) staticParams.Dispose();
        }
    }

    /// <summary>Stacks the row blocks of several weights' parameters (same groups) into one set for a shared solve.</summary>
    private static GroupParams StackRows(GroupParams[] parts, long[] rowCounts)
    {
        using var scope = NewDisposeScope();
        // Per-tensor parameters have one row: repeat it for every row of its weight.
        Tensor Rows(Tensor t, int i) => t.shape[0] == rowCounts[i] ? t : t.expand(rowCounts[i], t.shape[1]);
        Tensor scale = cat(parts.Select((p, i) => Rows(p.Scale, i)).ToArray(), 0);
        Tensor? zero = parts[0].Zero is null ? null : cat(parts.Select((p, i) => Rows(p.Zero!, i)).ToArray(), 0);
        // Per-weight tensor scales (FP8-aware INT's s8) become one per row, so each row keeps its weight's.
        Tensor? global = parts.All(p => p.GlobalScale is not null)
            ? cat(parts.Select((p, i) => p.GlobalScale!.reshape(1, 1).expand(rowCounts[i], 1)).ToArray(), 0) : null;
        return new GroupParams(scale, zero, null, global, parts[0].GroupSize, parts[0].Columns).MoveToOuterDisposeScope();
    }

    /// <summary>The kernel path of one block: per-position scales gathered once, then a single launch.</summary>
    private static void SolveBlockFused(Tensor w, Tensor quantized, Tensor upper, int c1, int c2, Tensor groupOfPosition,
        GroupParams p, ElementGrid grid)
    {
        using var scope = NewDisposeScope();
        long rows = w.shape[0], columns = w.shape[1];
        int count = c2 - c1;
        Tensor index = groupOfPosition.narrow(0, c1, count);
        Tensor scale = p.Scale.index_select(1, index).expand(rows, count);
        Tensor? zero = p.Zero?.index_select(1, index).expand(rows, count);
        Tensor errors = GptqBlockKernel.SolveBlock(w, quantized, upper, c1, c2, scale, zero, grid);
        if (c2 < columns)
            w.narrow(1, c2, columns - c2).sub_(errors.matmul(upper.narrow(0, c1, count).narrow(1, c2, columns - c2)));
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
                // First column of a group (groups are contiguous in processing order here). As in the GPTQ reference
                // loop (and INC), parameters come from the weight as it stood at the start of this block: updates from
                // earlier blocks are in, updates from earlier columns of this block are not. With blocks of one group
                // the two coincide; INC's default 2048-column block makes every group of a narrow layer use the
                // original weight, and matching that is what makes INC's GPTQ numbers reproducible.
                lazyParams[group] ??= quantizer.ComputeParams(w.narrow(1, c1 + i, groupSize), global, layer).DetachFromDisposeScope();
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
