using TorchSharp;

namespace QuantSharp.IO;

/// <summary>Element types a safetensors header can name. Member names are the header's spelling.</summary>
public enum SafeDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 }

/// <summary>Sizes, header names and torch equivalents of <see cref="SafeDType"/>.</summary>
public static class SafeDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ElementSize(SafeDType dtype) => dtype switch
    {
        SafeDType.F64 or SafeDType.I64 => 8,
        SafeDType.F32 or SafeDType.I32 => 4,
        SafeDType.F16 or SafeDType.BF16 or SafeDType.I16 => 2,
        SafeDType.I8 or SafeDType.U8 or SafeDType.BOOL or SafeDType.F8_E4M3 or SafeDType.F8_E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The spelling used in a header ("BF16", "F8_E4M3", ...).</summary>
    public static string HeaderName(SafeDType dtype) => dtype.ToString();

    /// <summary>
    /// Parses a header dtype. Exact, case-sensitive match only: Enum.TryParse would also accept "bf16" or "3", which
    /// other readers reject, and a file we accept should be one every reader accepts.
    /// </summary>
    public static bool TryParse(string? text, out SafeDType dtype)
    {
        foreach (SafeDType d in Enum.GetValues<SafeDType>())
        {
            if (string.Equals(HeaderName(d), text, StringComparison.Ordinal))
            {
                dtype = d;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>
    /// The torch type a tensor of this dtype is read as. TorchSharp 0.107 has no float8 types, so F8_* come back as
    /// uint8 holding the raw bytes (same shape); the caller decodes them.
    /// </summary>
    public static torch.ScalarType ToScalarType(SafeDType dtype) => dtype switch
    {
        SafeDType.F64 => torch.ScalarType.Float64,
        SafeDType.F32 => torch.ScalarType.Float32,
        SafeDType.F16 => torch.ScalarType.Float16,
        SafeDType.BF16 => torch.ScalarType.BFloat16,
        SafeDType.I64 => torch.ScalarType.Int64,
        SafeDType.I32 => torch.ScalarType.Int32,
        SafeDType.I16 => torch.ScalarType.Int16,
        SafeDType.I8 => torch.ScalarType.Int8,
        SafeDType.U8 or SafeDType.F8_E4M3 or SafeDType.F8_E5M2 => torch.ScalarType.Byte,
        SafeDType.BOOL => torch.ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The dtype a torch tensor is stored as; complex and quantized types have no safetensors spelling.</summary>
    public static SafeDType FromScalarType(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 => SafeDType.F64,
        torch.ScalarType.Float32 => SafeDType.F32,
        torch.ScalarType.Float16 => SafeDType.F16,
        torch.ScalarType.BFloat16 => SafeDType.BF16,
        torch.ScalarType.Int64 => SafeDType.I64,
        torch.ScalarType.Int32 => SafeDType.I32,
        torch.ScalarType.Int16 => SafeDType.I16,
        torch.ScalarType.Int8 => SafeDType.I8,
        torch.ScalarType.Byte => SafeDType.U8,
        torch.ScalarType.Bool => SafeDType.BOOL,
        _ => throw new ArgumentException($"torch dtype {type} cannot be stored in safetensors.", nameof(type)),
    };

    /// <summary>
    /// Byte size of a tensor, or null when the element count overflows a long (a hostile header can claim any shape;
    /// callers turn null into a file error rather than an OverflowException).
    /// </summary>
    public static long? TryByteCount(SafeDType dtype, IReadOnlyList<long> shape)
    {
        try
        {
            long n = ElementSize(dtype);
            foreach (long d in shape)
            {
                if (d < 0) return null;
                n = checked(n * d);
            }
            return n;
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}
