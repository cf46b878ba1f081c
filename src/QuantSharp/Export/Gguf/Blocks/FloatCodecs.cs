using System.Buffers.Binary;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>F32: one little-endian float per value (norms and other 1-D tensors stay in it).</summary>
internal sealed class F32Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.F32;
    public int BlockValues => 1;
    public int BlockBytes => 4;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        for (int i = 0; i < row.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(blocks[(4 * i)..], row[i]);
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int i = 0; i < row.Length; i++) row[i] = BinaryPrimitives.ReadSingleLittleEndian(blocks[(4 * i)..]);
    }
}

/// <summary>F16: IEEE half per value.</summary>
internal sealed class F16Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.F16;
    public int BlockValues => 1;
    public int BlockBytes => 2;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        for (int i = 0; i < row.Length; i++) GgmlHalf.WriteF16(blocks[(2 * i)..], row[i]);
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int i = 0; i < row.Length; i++) row[i] = GgmlHalf.ReadF16(blocks[(2 * i)..]);
    }
}

/// <summary>BF16: the top 16 bits of the float, rounded to nearest even.</summary>
internal sealed class BF16Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.BF16;
    public int BlockValues => 1;
    public int BlockBytes => 2;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        for (int i = 0; i < row.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(blocks[(2 * i)..], GgmlHalf.ToBF16(row[i]));
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int i = 0; i < row.Length; i++) row[i] = GgmlHalf.FromBF16(BinaryPrimitives.ReadUInt16LittleEndian(blocks[(2 * i)..]));
    }
}
