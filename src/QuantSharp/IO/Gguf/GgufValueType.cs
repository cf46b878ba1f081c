namespace QuantSharp.IO.Gguf;

/// <summary>Metadata value types of the GGUF specification, with their on-disk numbers.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// One typed metadata value. Scalars hold the matching CLR type (byte, sbyte, ushort, short, uint, int, float, bool,
/// string, ulong, long, double); an array holds <see cref="ElementType"/> and an array of that CLR type.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Strings(string[] values) => new(GgufValueType.Array, values, GgufValueType.String);
    public static GgufValue Int32s(int[] values) => new(GgufValueType.Array, values, GgufValueType.Int32);
    public static GgufValue Float32s(float[] values) => new(GgufValueType.Array, values, GgufValueType.Float32);

    public override string ToString() => Type == GgufValueType.Array
        ? $"array<{ElementType}>[{((Array)Value).Length}]"
        : $"{Type} {Value}";
}
