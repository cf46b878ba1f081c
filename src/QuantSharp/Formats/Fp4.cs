namespace QuantSharp.Formats;

/// <summary>Constants of the E2M1 element grid shared by the FP, MXFP and NVFP formats.</summary>
public static class Fp4
{
    /// <summary>Largest E2M1 magnitude (6 = 1.5·2^2).</summary>
    public const float MaxMagnitude = 6f;

    /// <summary>Exponent of the largest E2M1 binade (used by the OCP MX scale rule).</summary>
    public const int MaxExponent = 2;

    /// <summary>The element format.</summary>
    public static MiniFloatFormat Format => MiniFloatFormat.E2M1;
}
