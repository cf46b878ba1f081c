namespace QuantSharp.Api;

/// <summary>
/// INC's GPTQConfig. Defaults as INC's: int4 symmetric group 32, percdamp 0.01, block_size 2048, no act_order, no
/// static groups, not true-sequential. <see cref="HybridOrder"/> is INC's hybrid_order (GAR; JSON also accepts
/// hybrid_act_order).
/// </summary>
public sealed record GptqConfig : WeightOnlyConfig
{
    public GptqConfig() { DoubleQuantUseSym = false; }

    public override string Algorithm => "gptq";

    /// <summary>Process columns by descending diag(H).</summary>
    public bool ActOrder { get; init; }
    /// <summary>GAR: columns ordered by diag(H) inside each group, groups by their largest diag(H); groups stay whole.</summary>
    public bool HybridOrder { get; init; }
    /// <summary>Dampening added to diag(H), as a fraction of its mean.</summary>
    public double Percdamp { get; init; } = 0.01;
    /// <summary>Columns per lazy-update block.</summary>
    public int BlockSize { get; init; } = 2048;
    /// <summary>Group scales computed from the original weight before the column loop.</summary>
    public bool StaticGroups { get; init; }
    /// <summary>q/k/v, then o_proj, then gate/up, then down_proj, re-capturing each one's input from the partly quantized layer.</summary>
    public bool TrueSequential { get; init; }
    /// <summary>
    /// INC's fp8_aware (DPQ): every dequantized INT weight is an FP8 E4M3 value (hardware that dequantizes INT4 into
    /// FP8 and multiplies in FP8); see <see cref="Formats.Fp8AwareScaling"/>.
    /// </summary>
    public bool Fp8Aware { get; init; }
    /// <summary>The E4M3 variant of <see cref="Fp8Aware"/>: "ocp" (E4M3FN, max 448; default) or "gaudi" (finite-only, bias 8, max 240).</summary>
    public string Fp8Variant { get; init; } = "ocp";
    /// <summary>The protective range R = F − F/(2^bits − 1) the FP8 values are kept within (224 for 4-bit Gaudi).</summary>
    public float ProtectiveRange => Formats.Fp8AwareScaling.ProtectiveRange(Formats.E4M3Variants.Parse(Fp8Variant, "fp8_variant"), Bits);

    public override IReadOnlyList<string> Keys =>
    [
        "dtype", "bits", "use_sym", "group_size", "use_mse_search",
        "use_double_quant", "double_quant_dtype", "double_quant_bits", "double_quant_use_sym", "double_quant_group_size",
        "quant_lm_head", "act_order", "hybrid_order", "percdamp", "block_size", "static_groups", "true_sequential",
        "fp8_aware", "fp8_variant",
    ];
}
