using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// OCP E8M0 scale: an unsigned power of two 2^e stored as the byte e + 127, with e clamped to [-127, 127]
/// (byte 255 is NaN and never produced).
/// </summary>
public static class E8M0Format
{
    public const int Bias = 127;
    public const int MinExponent = -127;
    public const int MaxExponent = 127;

    /// <summary>Bytes (uint8) of integer exponents, clamped to the representable range.</summary>
    public static Tensor Encode(Tensor exponent)
    {
        using var scope = NewDisposeScope();
        return exponent.to(ScalarType.Int64).clamp(MinExponent, MaxExponent).add_(Bias).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>The float32 power of two of each byte (2^-127 is a float32 subnormal and is kept exact); 255 → NaN.</summary>
    public static Tensor Decode(Tensor bytes)
    {
        using var scope = NewDisposeScope();
        Tensor exponent = bytes.to(ScalarType.Int64).sub_(Bias);
        Tensor value = Pow2.Exact(exponent);
        return torch.where(bytes.to(ScalarType.Int64).eq(255), torch.full_like(value, float.NaN), value).MoveToOuterDisposeScope();
    }

    /// <summary>The clamped exponent e = floor(log2 x) of positive values (x == 0 gives the minimum exponent).</summary>
    public static Tensor ExponentOf(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor e = Pow2.FloorLog2(x);
        e = torch.where(x.to(ScalarType.Float32).le(0), torch.full_like(e, MinExponent), e);
        return e.clamp(MinExponent, MaxExponent).MoveToOuterDisposeScope();
    }
}
