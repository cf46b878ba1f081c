using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// Q4_1: blocks of 32 as [fp16 d][fp16 m][16 bytes], value = d·q + m, nibbles as Q4_0. Without an importance matrix
/// the range fit d = (max − min)/15, m = min; with one, ggml's weighted affine search (qkx3, 37 candidates).
/// </summary>
internal sealed class Q4_1Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.Q4_1;
    public int BlockValues => 32;
    public int BlockBytes => 20;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        float sigma2 = importance.IsEmpty ? 0 : ScaleSearch.SumSquares(row) / row.Length;
        Span<byte> levels = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = blocks.Slice(b * 20, 20);
            if (importance.IsEmpty)
            {
                float min = float.MaxValue, max = float.MinValue;
                foreach (float v in x)
                {
                    if (v < min) min = v;
                    if (v > max) max = v;
                }
                float d = (max - min) / 15;
                float id = d != 0 ? 1 / d : 0;
                GgmlHalf.WriteF16(y, d);
                GgmlHalf.WriteF16(y[2..], min);
                for (int j = 0; j < 32; j++) levels[j] = (byte)Math.Min(15, (int)((x[j] - min) * id + 0.5f));
            }
            else
            {
                ScaleSearch.ImportanceWeights(x, importance.Slice(b * 32, 32), sigma2, weights);
                float d = ScaleSearch.AffineWeighted(15, x, weights, levels, out float negMin, -0.9f, 0.05f, 36, clampCandidates: true);
                GgmlHalf.WriteF16(y, d);
                GgmlHalf.WriteF16(y[2..], -negMin);
            }
            Q4_0Codec.PackNibbles(levels, y[4..]);
        }
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var y = blocks.Slice(b * 20, 20);
            float d = GgmlHalf.ReadF16(y), m = GgmlHalf.ReadF16(y[2..]);
            for (int j = 0; j < 16; j++)
            {
                row[b * 32 + j] = (y[4 + j] & 0x0F) * d + m;
                row[b * 32 + j + 16] = (y[4 + j] >> 4) * d + m;
            }
        }
    }
}
