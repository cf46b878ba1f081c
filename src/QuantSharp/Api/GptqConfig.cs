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

    public override IReadOnlyList<string> Keys =>
    [
        "dtype", "bits", "use_sym", "group_size", "use_mse_search",
        "use_double_quant", "double_quant_dtype", "double_quant_bits", "double_quant_use_sym", "double_quant_group_size",
        "quant_lm_head", "act_order", "hybrid_order", "percdamp", "block_size", "static_groups", "true_sequential",
    ];
}
