namespace QuantSharp.IO.Gguf;

/// <summary>
/// ggml tensor types, numbered as in the GGUF specification (the number is what a tensor info stores on disk).
/// Only the types QuantSharp reads or writes are listed, plus the common ones so a reader can name them in errors.
/// </summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ4_NL = 20,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
    MXFP4 = 39,
}

/// <summary>Block geometry of each type: how many values one block holds and how many bytes it takes.</summary>
public static class GgmlTypeSizes
{
    /// <summary>(values per block, bytes per block), or null for a type whose layout we do not know.</summary>
    public static (int BlockValues, int BlockBytes)? Geometry(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 => (1, 2),
        GgmlType.BF16 => (1, 2),
        GgmlType.F64 => (1, 8),
        GgmlType.I8 => (1, 1),
        GgmlType.I16 => (1, 2),
        GgmlType.I32 => (1, 4),
        GgmlType.I64 => (1, 8),
        GgmlType.Q4_0 => (32, 2 + 16),
        GgmlType.Q4_1 => (32, 2 + 2 + 16),
        GgmlType.Q5_0 => (32, 2 + 4 + 16),
        GgmlType.Q5_1 => (32, 2 + 2 + 4 + 16),
        GgmlType.Q8_0 => (32, 2 + 32),
        GgmlType.Q8_1 => (32, 2 + 2 + 32),
        GgmlType.Q2_K => (256, 16 + 64 + 2 + 2),
        GgmlType.Q3_K => (256, 32 + 64 + 12 + 2),
        GgmlType.Q4_K => (256, 2 + 2 + 12 + 128),
        GgmlType.Q5_K => (256, 2 + 2 + 12 + 32 + 128),
        GgmlType.Q6_K => (256, 128 + 64 + 16 + 2),
        GgmlType.Q8_K => (256, 4 + 256 + 32),
        GgmlType.IQ4_NL => (32, 2 + 16),
        GgmlType.IQ4_XS => (256, 2 + 2 + 4 + 128),
        GgmlType.MXFP4 => (32, 1 + 16),
        _ => null,
    };

    public static string Name(GgmlType type) => Enum.IsDefined(type) ? type.ToString() : $"type #{(uint)type}";

    /// <summary>Bytes of a row of <paramref name="rowLength"/> values; throws when the row is not whole blocks.</summary>
    public static long RowBytes(GgmlType type, long rowLength)
    {
        var (bv, bb) = Geometry(type) ?? throw new ArgumentException($"unknown ggml type {Name(type)}");
        if (rowLength % bv != 0) throw new ArgumentException($"{Name(type)} needs rows of a multiple of {bv} values, got {rowLength}");
        return rowLength / bv * bb;
    }
}
