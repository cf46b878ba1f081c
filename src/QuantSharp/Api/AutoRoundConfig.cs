namespace QuantSharp.Api;

/// <summary>
/// INC's AutoRoundConfig (SignRound), with auto-round's W4A16 scheme defaults: int4, symmetric, group 128, 200
/// iterations, 128 samples, batch 8, lr = 1/iters when unset.
/// </summary>
public sealed record AutoRoundConfig : WeightOnlyConfig
{
    public AutoRoundConfig() { GroupSize = 128; }

    public override string Algorithm => "autoround";
    public int Iters { get; init; } = 200;
    public int Nsamples { get; init; } = 128;
    public int BatchSize { get; init; } = 8;
    public int Seqlen { get; init; } = 2048;
    /// <summary>Learning rate of the rounding offsets; null = 1/iters.</summary>
    public double? Lr { get; init; }
    /// <summary>Learning rate of the min/max scale factors; null = lr.</summary>
    public double? MinmaxLr { get; init; }
    public bool EnableMinmaxTuning { get; init; } = true;
    public bool EnableQuantedInput { get; init; } = true;
    public bool NotUseBestMse { get; init; }
    public int Seed { get; init; } = 42;

    public override IReadOnlyList<string> Keys =>
    [
        "dtype", "bits", "use_sym", "group_size", "quant_lm_head", "iters", "nsamples", "batch_size", "seqlen", "lr",
        "minmax_lr", "enable_minmax_tuning", "enable_quanted_input", "not_use_best_mse", "seed",
    ];
}
