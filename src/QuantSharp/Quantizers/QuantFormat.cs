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

    /// <summary>QLoRA NormalFloat-4 levels (<see cref="Formats.LevelTable.Nf4"/>), float32 scale absmax per group.</summary>
    Nf4,

    /// <summary>bitsandbytes FP4 levels (<see cref="Formats.LevelTable.Fp4Bnb"/>; INC's fp4 and fp4_e2m1_bnb), scale absmax/12.</summary>
    Fp4Bnb,

    /// <summary>INC's fp4_e2m1 levels (<see cref="Formats.LevelTable.Fp4E2M1Inc"/>: E2M1/6 with a 0.0625/6 subnormal), scale absmax.</summary>
    Fp4E2M1Inc,
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

    /// <summary>
    /// Intel Neural Compressor's RTN use_mse_search: one clip ratio r = 1 − i/200 (i = 0..39) for the whole tensor,
    /// applied to every group's min and max (absmax when symmetric), chosen by the lowest mean squared weight error of
    /// the whole tensor (strictly smaller wins, so ties keep the wider range).
    /// </summary>
    ClipSearch,
}

/// <summary>Scale rule of symmetric INT quantization.</summary>
public enum IntSymmetricRule
{
    /// <summary>FP-Quant: scale 2·absmax/(2^b − 1), grid [−2^(b−1), 2^(b−1) − 1].</summary>
    FpQuant,

    /// <summary>Intel Neural Compressor's RTN: scale absmax/(2^(b−1) − 1), so ±absmax land on ±(2^(b−1) − 1).</summary>
    Inc,
}
