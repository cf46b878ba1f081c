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

/// <summary>The names of <see cref="E4M3Variant"/> as flags and saved configs spell them.</summary>
public static class E4M3Variants
{
    public static string Name(E4M3Variant variant) => variant == E4M3Variant.Gaudi ? "gaudi" : "ocp";

    /// <summary>"ocp" or "gaudi"; <paramref name="what"/> names the flag or field in the error.</summary>
    public static E4M3Variant Parse(string name, string what) => name.ToLowerInvariant() switch
    {
        "ocp" => E4M3Variant.Ocp,
        "gaudi" => E4M3Variant.Gaudi,
        _ => throw new QuantSharpException($"{what} {name}: expected ocp (E4M3FN, max 448) or gaudi (finite-only bias-8 E4M3, max 240)."),
    };
}
