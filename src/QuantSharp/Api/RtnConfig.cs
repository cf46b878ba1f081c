namespace QuantSharp.Api;

/// <summary>INC's RTNConfig: round-to-nearest, no calibration data. Defaults: int4, symmetric, group 32.</summary>
public sealed record RtnConfig : WeightOnlyConfig
{
    public override string Algorithm => "rtn";
    public override IReadOnlyList<string> Keys => CommonKeys;
}
