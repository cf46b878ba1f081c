using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// A small binary float (1 sign bit, <see cref="ExponentBits"/>, <see cref="MantissaBits"/>) with subnormals,
/// round-to-nearest-even and saturation to ±<see cref="MaxFinite"/>. E2M1 (FP4) and both E4M3 variants are instances of
/// this one rule, so FP4 elements, NVFP4 scales and FP8 weights all round the same way. Everything is computed in
/// float32 with tensor ops (TorchSharp has no FP8 dtype); codes are uint8.
/// </summary>
public sealed class MiniFloatFormat
{
    /// <summary>FP4 E2M1: magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}; code = sign&lt;&lt;3 | magnitude index.</summary>
    public static readonly MiniFloatFormat E2M1 = new("E2M1", exponentBits: 2, mantissaBits: 1, exponentBias: 1, maxFinite: 6f, negativeZeroIsNaN: false);

    /// <summary>OCP FP8 E4M3 (max 448).</summary>
    public static readonly MiniFloatFormat E4M3 = new("E4M3", exponentBits: 4, mantissaBits: 3, exponentBias: 7, maxFinite: 448f, negativeZeroIsNaN: false);

    /// <summary>Gaudi finite-only FP8 E4M3 (bias 8, max 240).</summary>
    public static readonly MiniFloatFormat E4M3Gaudi = new("E4M3-Gaudi", exponentBits: 4, mantissaBits: 3, exponentBias: 8, maxFinite: 240f, negativeZeroIsNaN: true);

    /// <summary>The E4M3 format of a variant.</summary>
    public static MiniFloatFormat E4M3Of(E4M3Variant variant) => variant switch
    {
        E4M3Variant.Ocp => E4M3,
        E4M3Variant.Gaudi => E4M3Gaudi,
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };

    private readonly float[] _decodeTable;

    private MiniFloatFormat(string name, int exponentBits, int mantissaBits, int exponentBias, float maxFinite, bool negativeZeroIsNaN)
    {
        Name = name;
        ExponentBits = exponentBits;
        MantissaBits = mantissaBits;
        ExponentBias = exponentBias;
        MaxFinite = maxFinite;
        NegativeZeroIsNaN = negativeZeroIsNaN;
        _decodeTable = BuildDecodeTable();
    }

    public string Name { get; }
    public int ExponentBits { get; }
    public int MantissaBits { get; }
    public int ExponentBias { get; }
    public float MaxFinite { get; }

    /// <summary>True when the negative-zero code is NaN (fnuz), so zero of either sign encodes as 0.</summary>
    public bool NegativeZeroIsNaN { get; }

    /// <summary>Exponent of the smallest normal number (1 − bias); below it the spacing stays 2^(that − mantissa bits).</summary>
    public int MinNormalExponent => 1 - ExponentBias;

    /// <summary>The smallest positive (subnormal) value.</summary>
    public float SmallestSubnormal => MathF.ScaleB(1f, MinNormalExponent - MantissaBits);

    /// <summary>Number of codes (2^(1+E+M)).</summary>
    public int CodeCount => 1 << (1 + ExponentBits + MantissaBits);

    /// <summary>The value of every code, NaN for codes that are not finite values of this format.</summary>
    public IReadOnlyList<float> DecodeTable => _decodeTable;

    /// <summary>
    /// Rounds float32 values to the nearest representable value (ties to even mantissa), saturating at ±MaxFinite.
    /// Returns float32 of the same shape; the sign of zero follows the input.
    /// </summary>
    public Tensor Round(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor xf = x.to(ScalarType.Float32);
        Tensor magnitude = xf.abs().clamp_max(MaxFinite);
        // Spacing of the grid around |x|: 2^(e − M) with e = floor(log2|x|), never below the subnormal spacing.
        Tensor exponent = Pow2.FloorLog2(magnitude).clamp_min(MinNormalExponent);
        Tensor quantum = Pow2.Exact(exponent.sub_(MantissaBits));
        // |x|/quantum is exact (power-of-two division); torch.round is round-half-to-even.
        Tensor rounded = magnitude.div(quantum).round_().mul_(quantum).clamp_max_(MaxFinite);
        return rounded.copysign(xf).MoveToOuterDisposeScope();
    }

    /// <summary>The code (uint8) of the nearest representable value of each element (rounds first).</summary>
    public Tensor Encode(Tensor x)
    {
        using var scope = NewDisposeScope();
        return EncodeRounded(Round(x)).MoveToOuterDisposeScope();
    }

    /// <summary>Codes of values that are already representable (the output of <see cref="Round"/>).</summary>
    internal Tensor EncodeRounded(Tensor rounded)
    {
        using var scope = NewDisposeScope();
        Tensor magnitude = rounded.abs();
        Tensor isNormal = magnitude.ge(MathF.ScaleB(1f, MinNormalExponent));
        Tensor exponent = Pow2.FloorLog2(magnitude).clamp_min(MinNormalExponent);
        // Integer significand including the implicit bit for normals: in [0, 2^(M+1)).
        Tensor significand = magnitude.div(Pow2.Exact(exponent - MantissaBits)).to(ScalarType.Int64);
        Tensor field = torch.where(isNormal, exponent + ExponentBias, torch.zeros_like(exponent));
        Tensor mantissa = torch.where(isNormal, significand - (1L << MantissaBits), significand);
        Tensor sign = rounded.signbit();
        if (NegativeZeroIsNaN) sign = sign.logical_and(magnitude.ne(0));
        Tensor code = sign.to(ScalarType.Int64).mul_(1L << (ExponentBits + MantissaBits))
            .add_(field.mul(1L << MantissaBits)).add_(mantissa);
        return code.to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The non-negative finite values in code order (ascending): round-to-nearest-even on the mantissa is
    /// nearest-value with ties to the even index here, since a magnitude's index is its exponent and mantissa bits.
    /// </summary>
    public Quantizers.ElementGrid MagnitudeGrid()
    {
        int magnitudes = CodeCount / 2;
        return Quantizers.ElementGrid.SymmetricTable(_decodeTable.Take(magnitudes).Where(float.IsFinite));
    }

    /// <summary>Values (float32) of uint8 codes; codes outside the format's finite set decode to NaN.</summary>
    public Tensor Decode(Tensor codes)
    {
        using var scope = NewDisposeScope();
        Tensor table = DeviceConstants.Get("minifloat:" + Name, codes.device, () => _decodeTable);
        Tensor index = codes.to(ScalarType.Int64).bitwise_and(CodeCount - 1);
        return table.take(index).MoveToOuterDisposeScope();
    }

    private float[] BuildDecodeTable()
    {
        var table = new float[CodeCount];
        int mantissaMask = (1 << MantissaBits) - 1, exponentMask = (1 << ExponentBits) - 1;
        for (int code = 0; code < table.Length; code++)
        {
            bool negative = (code >> (ExponentBits + MantissaBits)) != 0;
            int field = (code >> MantissaBits) & exponentMask, mantissa = code & mantissaMask;
            float magnitude = field == 0
                ? MathF.ScaleB(mantissa, MinNormalExponent - MantissaBits)
                : MathF.ScaleB((1 << MantissaBits) + mantissa, field - ExponentBias - MantissaBits);
            float value = negative ? -magnitude : magnitude;
            bool nan = magnitude > MaxFinite || (NegativeZeroIsNaN && negative && magnitude == 0f);
            table[code] = nan ? float.NaN : value;
        }
        return table;
    }

    public override string ToString() => Name;
}
