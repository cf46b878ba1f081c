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
            _ => throw new QuantSharpException(
                $"{where}: algorithm '{c.Algorithm}' is not available in this build yet (available: rtn, gptq)."),
        };
    }

    /// <summary>The weight format of dtype/bits/group_size/use_sym (and the INC extras this build supports).</summary>
    public static QuantSpec Spec(WeightOnlyConfig c, string where)
    {
        string Key(string k) => $"{where}: {k}";
        if (c.GroupDim != 1)
            throw new QuantSharpException($"{Key("group_dim")} {c.GroupDim}: only 1 (groups along the input dimension) is supported.");
        if (c.UseFullRange)
            throw new QuantSharpException($"{Key("use_full_range")} true: not available in this build yet.");
        if (c.UseDoubleQuant)
            throw new QuantSharpException($"{Key("use_double_quant")} true: not available in this build yet.");
        if (c.UseMseSearch && c is not GptqConfig)
            throw new QuantSharpException($"{Key("use_mse_search")} true: available for gptq only in this build.");
        int groupSize = c.GroupSize switch
        {
            -1 => QuantSpec.PerChannel,
            > 0 => c.GroupSize,
            _ => throw new QuantSharpException($"{Key("group_size")} {c.GroupSize}: expected a positive group size or -1 (per output channel)."),
        };
        var observer = c.UseMseSearch ? ObserverKind.Mse : ObserverKind.MinMax;
        string dtype = c.Dtype.ToLowerInvariant();
        if (dtype.StartsWith("int", StringComparison.Ordinal))
        {
            int bits = c.Bits;
            if (dtype != "int" && !int.TryParse(dtype.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out bits))
                throw new QuantSharpException($"{Key("dtype")} '{c.Dtype}': expected int, int2 … int8, or a float dtype.");
            if (bits < IntGrid.MinBits || bits > IntGrid.MaxBits)
                throw new QuantSharpException($"{Key("bits")} {bits}: dtype int supports {IntGrid.MinBits} to {IntGrid.MaxBits} bits.");
            return QuantSpec.Int(bits, groupSize, c.UseSym, observer);
        }
        QuantSpec spec = dtype switch
        {
            "mxfp4" => QuantSpec.MxFp4(observer: observer),
            "nvfp4" => QuantSpec.NvFp4(observer),
            // INC's fp4_e2m1 is its own level table (not our fp: E2M1 with scale absmax/6), so it waits for the tables too.
            "nf4" or "fp4" or "fp4_e2m1_bnb" or "fp4_e2m1" => throw new QuantSharpException($"{Key("dtype")} '{c.Dtype}': not available in this build yet."),
            _ => throw new QuantSharpException(
                $"{Key("dtype")} '{c.Dtype}': unknown (known: int, int2 … int8, fp4_e2m1, mxfp4, nvfp4, fp32, bf16, fp16)."),
        };
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
