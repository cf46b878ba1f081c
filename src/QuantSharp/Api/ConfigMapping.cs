using System.Globalization;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Formats;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;

namespace QuantSharp.Api;

/// <summary>
/// Turns one INC configuration record into the pipeline's <see cref="QuantizationConfig"/> (method, weight spec,
/// GPTQ options). Every error names <c>where</c> (the recipe file and section, or the API call) and the INC key.
/// </summary>
internal static class ConfigMapping
{
    public static QuantizationConfig ToPipeline(WeightOnlyConfig c, QuantizationConfig pipeline, string where)
    {
        var common = pipeline with { PerLinear = null, Activations = null };
        if (c.IsFloat) return common with { Method = QuantMethod.Rtn, Weights = null };
        var spec = Spec(c, where);
        return c switch
        {
            RtnConfig => common with { Method = QuantMethod.Rtn, Weights = spec },
            GptqConfig g => common with { Method = QuantMethod.Gptq, Weights = spec, Gptq = Gptq(g, spec, where) },
            HqqConfig h => common with
            {
                Method = QuantMethod.Hqq, Weights = spec,
                Hqq = new Algorithms.Hqq.HqqOptions { QuantZero = h.QuantZero, QuantScale = h.QuantScale, ScaleQuantGroupSize = h.ScaleQuantGroupSize },
            },
            AwqConfig a => common with
            {
                Method = QuantMethod.Awq, Weights = spec,
                Awq = new Algorithms.Awq.AwqOptions { UseAutoScale = a.UseAutoScale, UseAutoClip = a.UseAutoClip, Folding = a.Folding },
            },
            TeqConfig => common with { Method = QuantMethod.Teq, Weights = spec },
            AutoRoundConfig r => common with
            {
                Method = QuantMethod.AutoRound, Weights = spec,
                AutoRound = new Algorithms.AutoRound.AutoRoundOptions
                {
                    Iters = r.Iters, LearningRate = r.Lr, MinMaxLearningRate = r.MinmaxLr, MinMaxTuning = r.EnableMinmaxTuning,
                    QuantizedInputs = r.EnableQuantedInput, Seed = r.Seed,
                },
            },
            _ => throw new QuantSharpException($"{where}: algorithm '{c.Algorithm}' is not available in this build."),
        };
    }

    /// <summary>The weight format of dtype/bits/group_size/use_sym and INC's extras (full range, group_dim, MSE
    /// search, double quant), with the symmetric INT scale rule of the algorithm INC would run.</summary>
    public static QuantSpec Spec(WeightOnlyConfig c, string where)
    {
        string Key(string k) => $"{where}: {k}";
        if (c.GroupDim is not (0 or 1))
            throw new QuantSharpException($"{Key("group_dim")} {c.GroupDim}: expected 1 (groups along the input dimension) or 0 (along the output dimension).");
        if (c.GroupDim == 0 && c is not RtnConfig)
            throw new QuantSharpException($"{Key("group_dim")} 0: supported by rtn only (the other algorithms quantize input-column groups).");
        int groupSize = c.GroupSize switch
        {
            -1 => QuantSpec.PerChannel,
            > 0 => c.GroupSize,
            _ => throw new QuantSharpException($"{Key("group_size")} {c.GroupSize}: expected a positive group size or -1 (per output channel)."),
        };
        // use_mse_search: INC's GPTQ searches each group's range (our MSE observer); RTN, AWQ and TEQ search one clip
        // ratio for the whole tensor.
        var observer = !c.UseMseSearch ? ObserverKind.MinMax : c is GptqConfig ? ObserverKind.Mse : ObserverKind.ClipSearch;
        string dtype = c.Dtype.ToLowerInvariant();
        QuantSpec spec;
        if (dtype.StartsWith("int", StringComparison.Ordinal))
        {
            int bits = c.Bits;
            if (dtype != "int" && !int.TryParse(dtype.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out bits))
                throw new QuantSharpException($"{Key("dtype")} '{c.Dtype}': expected int, int1 … int8, or a float dtype.");
            if (bits < IntGrid.MinBits || bits > IntGrid.MaxBits)
                throw new QuantSharpException($"{Key("bits")} {bits}: dtype int supports {IntGrid.MinBits} to {IntGrid.MaxBits} bits.");
            bool symmetric = c.UseSym && c is not HqqConfig;
            if (symmetric && bits < IntGrid.MinSymmetricBits)
                throw new QuantSharpException($"{Key("bits")} {bits}: symmetric int needs at least {IntGrid.MinSymmetricBits} bits; set use_sym false.");
            // INC's RTN, AWQ and TEQ scale symmetric groups by absmax/(2^(b−1) − 1); its GPTQ by 2·absmax/(2^b − 1),
            // which is our default rule.
            var rule = symmetric && c is RtnConfig or AwqConfig or TeqConfig ? IntSymmetricRule.Inc : IntSymmetricRule.FpQuant;
            spec = QuantSpec.Int(bits, groupSize, symmetric, observer) with { SymmetricRule = rule, FullRange = c.UseFullRange && symmetric };
            if (c.UseFullRange && !symmetric)
                throw new QuantSharpException($"{Key("use_full_range")} true: applies to symmetric int only (use_sym true).");
        }
        else
        {
            spec = dtype switch
            {
                "nf4" => new QuantSpec(QuantFormat.Nf4, 4, groupSize, true, observer),
                "fp4" or "fp4_e2m1_bnb" => new QuantSpec(QuantFormat.Fp4Bnb, 4, groupSize, true, observer),
                "fp4_e2m1" => new QuantSpec(QuantFormat.Fp4E2M1Inc, 4, groupSize, true, observer),
                "mxfp4" => QuantSpec.MxFp4(observer: observer),
                "nvfp4" => QuantSpec.NvFp4(observer),
                _ => throw new QuantSharpException(
                    $"{Key("dtype")} '{c.Dtype}': unknown (known: int, int1 … int8, nf4, fp4, fp4_e2m1_bnb, fp4_e2m1, mxfp4, nvfp4, fp32, bf16, fp16)."),
            };
            if (c.Bits != 4)
                throw new QuantSharpException($"{Key("bits")} {c.Bits}: dtype {c.Dtype} has 4-bit elements only.");
            if (c.UseFullRange) throw new QuantSharpException($"{Key("use_full_range")} true: applies to symmetric int only, not dtype {c.Dtype}.");
        }
        if (c.UseDoubleQuant)
        {
            if (!c.DoubleQuantDtype.Equals("int", StringComparison.OrdinalIgnoreCase))
                throw new QuantSharpException($"{Key("double_quant_dtype")} '{c.DoubleQuantDtype}': only int is supported (as in INC).");
            if (c.DoubleQuantBits is < 2 or > 8)
                throw new QuantSharpException($"{Key("double_quant_bits")} {c.DoubleQuantBits}: expected 2 to 8.");
            if (c.DoubleQuantGroupSize < 1)
                throw new QuantSharpException($"{Key("double_quant_group_size")} {c.DoubleQuantGroupSize}: must be positive.");
            spec = spec with { DoubleQuant = new DoubleQuantSpec(c.DoubleQuantBits, c.DoubleQuantUseSym, c.DoubleQuantGroupSize) };
        }
        spec = spec with { GroupDim = c.GroupDim };
        if (c is GptqConfig { Fp8Aware: true } g)
        {
            if (spec.Format != QuantFormat.Int)
                throw new QuantSharpException($"{Key("fp8_aware")} true: applies to dtype int (INT codes dequantized to FP8), not {c.Dtype}.");
            spec = spec with { Fp8Aware = true, Fp8Variant = E4M3Variants.Parse(g.Fp8Variant, Key("fp8_variant")) };
        }
        spec.Validate($"{where}: ");
        return spec;
    }

    private static GptqOptions Gptq(GptqConfig g, QuantSpec spec, string where)
    {
        if (g.ActOrder && g.HybridOrder)
            throw new QuantSharpException($"{where}: act_order and hybrid_order exclude each other (INC refuses the pair too); choose one.");
        if (g.ActOrder && !g.StaticGroups && spec.GroupSize > 0)
            throw new QuantSharpException(
                $"{where}: act_order with static_groups false would form groups in activation order (g_idx not contiguous), " +
                "which QuantSharp's layouts do not hold; set static_groups true or use hybrid_order.");
        if (g.Percdamp < 0 || double.IsNaN(g.Percdamp))
            throw new QuantSharpException($"{where}: percdamp {g.Percdamp}: must be ≥ 0.");
        if (g.BlockSize <= 0)
            throw new QuantSharpException($"{where}: block_size {g.BlockSize}: must be positive.");
        return new GptqOptions
        {
            RelDamp = g.Percdamp,
            BlockSize = g.BlockSize,
            ActOrder = g.ActOrder,
            GroupAwareReorder = g.HybridOrder,
            StaticGroups = g.StaticGroups,
        };
    }
}
