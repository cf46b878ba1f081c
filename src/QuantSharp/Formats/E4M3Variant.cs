namespace QuantSharp.Formats;

/// <summary>Which FP8 E4M3 encoding a scale or weight is stored in.</summary>
public enum E4M3Variant
{
    /// <summary>OCP "E4M3FN": exponent bias 7, max 448, subnormals down to 2^-9, NaN = S.1111.111, no infinities.</summary>
    Ocp,

    /// <summary>
    /// Gaudi-style finite-only E4M3 ("fnuz"): exponent bias 8, max 240, subnormals down to 2^-10; the negative-zero code
    /// 0x80 is the only NaN, so zero is always encoded as 0x00.
    /// </summary>
    Gaudi,
}
