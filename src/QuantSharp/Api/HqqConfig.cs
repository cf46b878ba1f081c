namespace QuantSharp.Api;

/// <summary>INC's HQQConfig: half-quadratic zero-point optimisation, asymmetric, group 64, no calibration data.</summary>
public sealed record HqqConfig : WeightOnlyConfig
{
    public HqqConfig()
    {
        GroupSize = 64;
        UseSym = false;
    }

    public override string Algorithm => "hqq";
    /// <summary>Quantize the zero points themselves (8-bit).</summary>
    public bool QuantZero { get; init; } = true;
    /// <summary>Quantize the scales themselves (8-bit, groups of <see cref="ScaleQuantGroupSize"/>).</summary>
    public bool QuantScale { get; init; }
    public int ScaleQuantGroupSize { get; init; } = 128;

    public override IReadOnlyList<string> Keys =>
        ["dtype", "bits", "group_size", "quant_zero", "quant_scale", "scale_quant_group_size", "quant_lm_head"];
}
