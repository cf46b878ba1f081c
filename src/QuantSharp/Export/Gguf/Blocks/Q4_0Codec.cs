using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// Q4_0: blocks of 32 as [fp16 d][16 bytes], value = d·(q − 8). Byte j holds value j in its low nibble and value
/// j+16 in its high nibble. Without an importance matrix d = max/−8 (the signed value of largest magnitude maps to
/// −8); with one, a weighted least-squares search over 19 scales (ggml's quantize_row_q4_0_impl).
/// </summary>
internal sealed class Q4_0Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.Q4_0;
    public int BlockValues => 32;
    public int BlockBytes => 18;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        float sigma2 = importance.IsEmpty ? 0 : ScaleSearch.SumSquares(row) / row.Length;
        Span<byte> levels = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = blocks.Slice(b * 18, 18);
            var imp = importance.IsEmpty ? ReadOnlySpan<float>.Empty : importance.Slice(b * 32, 32);
            GgmlHalf.WriteF16(y, ScaleSearch.SymmetricBlock(8, x, imp, sigma2, levels, weights));
            PackNibbles(levels, y[2..]);
        }
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var y = blocks.Slice(b * 18, 18);
            float d = GgmlHalf.ReadF16(y);
            for (int j = 0; j < 16; j++)
            {
                row[b * 32 + j] = ((y[2 + j] & 0x0F) - 8) * d;
                row[b * 32 + j + 16] = ((y[2 + j] >> 4) - 8) * d;
            }
        }
    }

    /// <summary>ggml's 32-value nibble order: byte j = level[j] | level[j+16] &lt;&lt; 4.</summary>
    internal static void PackNibbles(ReadOnlySpan<byte> levels, Span<byte> qs)
    {
        for (int j = 0; j < 16; j++) qs[j] = (byte)(levels[j] | (levels[j + 16] << 4));
    }
}
