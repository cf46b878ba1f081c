namespace QuantSharp.Api;

/// <summary>INC's AWQConfig: activation-aware scale search (use_auto_scale) and clip search (use_auto_clip).</summary>
public sealed record AwqConfig : WeightOnlyConfig
{
    public AwqConfig() { DoubleQuantUseSym = true; }

    public override string Algorithm => "awq";
    public bool UseAutoScale { get; init; } = true;
    public bool UseAutoClip { get; init; } = true;
    /// <summary>Insert a multiply before a linear whose scale no previous module can absorb.</summary>
    public bool Folding { get; init; }

    public override IReadOnlyList<string> Keys => [.. CommonKeys, "use_auto_scale", "use_auto_clip", "folding"];
}
