namespace QuantSharp.Quantizers;

/// <summary>Element format of a quantized tensor.</summary>
public enum QuantFormat
{
    /// <summary>Uniform b-bit integers with a float32 scale (and zero point when asymmetric).</summary>
    Int,

    /// <summary>E2M1 elements with a float32 scale absmax/6 per group, channel or tensor.</summary>
    Fp,

    /// <summary>MXFP4: E2M1 elements in groups of 32 with an E8M0 scale.</summary>
    MxFp,

    /// <summary>NVFP4: E2M1 elements in groups of 16 with an E4M3 scale and a float32 global scale per tensor.</summary>
    NvFp,

    /// <summary>FP8 E4M3 elements with a float32 scale absmax/max-finite.</summary>
    Fp8,
}

/// <summary>How a group's range is chosen.</summary>
public enum ObserverKind
{
    /// <summary>The group's min/max (absmax when symmetric).</summary>
    MinMax,

    /// <summary>
    /// The min/max range shrunk by the factor 1 − i·0.8/100 (i = 0..99) that minimises Σ|x − q(x)|^2.4 over the group,
    /// searched with the unrounded float scale as FP-Quant does.
    /// </summary>
    Mse,
}
