namespace QuantSharp.Formats;

/// <summary>How an MXFP4 group's shared E8M0 scale is chosen from the group's maximum magnitude.</summary>
public enum MxScaleRule
{
    /// <summary>
    /// FP-Quant: scale = 2^floor(log2 absmax) / 3, stored as byte floor(log2 absmax) + 127 with a fixed per-tensor global
    /// scale 3. The group maximum lands in [3, 6) on the E2M1 grid, so it is never clipped.
    /// </summary>
    FpQuant,

    /// <summary>
    /// OCP MX specification: scale = 2^(floor(log2 absmax) − 2) (2 = E2M1's largest exponent), global scale 1.
    /// The group maximum lands in [4, 8) and values above 6 saturate.
    /// </summary>
    Ocp,
}
