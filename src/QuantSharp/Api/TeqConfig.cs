namespace QuantSharp.Api;

/// <summary>INC's TEQConfig: trainable equivalent per-channel scales.</summary>
public sealed record TeqConfig : WeightOnlyConfig
{
    public TeqConfig() { DoubleQuantUseSym = true; }

    public override string Algorithm => "teq";
    public bool Folding { get; init; } = true;

    public override IReadOnlyList<string> Keys => [.. CommonKeys, "folding"];
}
