using System.Buffers.Binary;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// Q5_0: blocks of 32 as [fp16 d][uint32 high bits][16 bytes low nibbles], value = d·(q − 16). Bit j of the uint32 is
/// the fifth bit of value j. llama.cpp writes it where Q4_K is asked for but a row is not a multiple of 256 values.
/// </summary>
internal sealed class Q5_0Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.Q5_0;
    public int BlockValues => 32;
    public int BlockBytes => 22;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        float sigma2 = importance.IsEmpty ? 0 : ScaleSearch.SumSquares(row) / row.Length;
        Span<byte> levels = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = blocks.Slice(b * 22, 22);
            var imp = importance.IsEmpty ? ReadOnlySpan<float>.Empty : importance.Slice(b * 32, 32);
            GgmlHalf.WriteF16(y, ScaleSearch.SymmetricBlock(16, x, imp, sigma2, levels, weights));
            uint high = 0;
            for (int j = 0; j < 32; j++) high |= (uint)((levels[j] >> 4) & 1) << j;
            BinaryPrimitives.WriteUInt32LittleEndian(y[2..], high);
            for (int j = 0; j < 16; j++) y[6 + j] = (byte)((levels[j] & 0x0F) | ((levels[j + 16] & 0x0F) << 4));
        }
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var y = blocks.Slice(b * 22, 22);
            float d = GgmlHalf.ReadF16(y);
            uint high = BinaryPrimitives.ReadUInt32LittleEndian(y[2..]);
            for (int j = 0; j < 16; j++)
            {
                int lo = (y[6 + j] & 0x0F) | (int)(((high >> j) & 1) << 4);
                int hi = (y[6 + j] >> 4) | (int)(((high >> (j + 16)) & 1) << 4);
                row[b * 32 + j] = (lo - 16) * d;
                row[b * 32 + j + 16] = (hi - 16) * d;
            }
        }
    }
}
