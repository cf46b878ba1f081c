using System.Buffers.Binary;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>fp16 and bf16 scalars as ggml stores them (little-endian; fp32→fp16 rounds to nearest even, as F16C does).</summary>
internal static class GgmlHalf
{
    public static void WriteF16(Span<byte> dst, float value) => BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)value);

    public static float ReadF16(ReadOnlySpan<byte> src) => (float)BinaryPrimitives.ReadHalfLittleEndian(src);

    /// <summary>The value after a round trip through fp16 (ggml re-reads stored scales before using them).</summary>
    public static float RoundF16(float value) => (float)(Half)value;

    /// <summary>fp32→bf16 with round-to-nearest-even; NaN stays a quiet NaN (ggml's rule).</summary>
    public static ushort ToBF16(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    public static float FromBF16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
