using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// Q4_K: super-blocks of 256 values = 8 sub-blocks of 32, stored as [fp16 d][fp16 dmin][12 bytes scales][128 bytes].
/// Sub-block j has a 6-bit scale sc_j and a 6-bit min m_j; value = d·sc_j·q − dmin·m_j, q in 0..15.
/// Scale packing (see <see cref="PackScaleMin"/>): sub-blocks 0–3 keep sc and m whole in the low 6 bits of bytes j and
/// j+4; sub-blocks 4–7 put their low 4 bits in byte j+4 (sc low nibble, m high nibble) and their top 2 bits in the
/// spare top bits of bytes j−4 (sc) and j (m). The 128 quant bytes cover 64 values per 32 bytes: byte l of chunk c
/// holds value 64c+l in its low nibble and 64c+32+l in its high nibble.
/// Without an importance matrix: ggml's qkx2 search per sub-block (weights avg|x| + |x|), scales quantized with
/// 63/max. With one: the qkx3 search with weights imatrix·sqrt(σ²+x²) and the weighted make_qp search for d and dmin.
/// </summary>
internal sealed class Q4_KCodec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.Q4_K;
    public int BlockValues => 256;
    public int BlockBytes => 144;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        Span<byte> levels = stackalloc byte[256];
        Span<float> weights = stackalloc float[32];
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        Span<float> subWeights = stackalloc float[8];
        Span<byte> scaleLevels = stackalloc byte[8];
        Span<byte> minLevels = stackalloc byte[8];
        for (int b = 0; b < row.Length / 256; b++)
        {
            var x = row.Slice(b * 256, 256);
            var y = blocks.Slice(b * 144, 144);
            y.Clear();
            float d, dmin;
            if (importance.IsEmpty)
            {
                float maxScale = 0, maxMin = 0;
                for (int j = 0; j < 8; j++)
                {
                    var xs = x.Slice(32 * j, 32);
                    float avg = MathF.Sqrt(ScaleSearch.SumSquares(xs) / 32);
                    for (int l = 0; l < 32; l++) weights[l] = avg + MathF.Abs(xs[l]);
                    scales[j] = ScaleSearch.AffineWeighted(15, xs, weights, levels.Slice(32 * j, 32), out mins[j], -1f, 0.1f, 20, clampCandidates: false);
                    maxScale = MathF.Max(maxScale, scales[j]);
                    maxMin = MathF.Max(maxMin, mins[j]);
                }
                float invScale = maxScale > 0 ? 63f / maxScale : 0f;
                float invMin = maxMin > 0 ? 63f / maxMin : 0f;
                for (int j = 0; j < 8; j++)
                {
                    scaleLevels[j] = (byte)Math.Min(63, ScaleSearch.NearestInt(invScale * scales[j]));
                    minLevels[j] = (byte)Math.Min(63, ScaleSearch.NearestInt(invMin * mins[j]));
                }
                d = maxScale / 63f;
                dmin = maxMin / 63f;
            }
            else
            {
                var qw = importance.Slice(b * 256, 256);
                float sigma2 = 2 * ScaleSearch.SumSquares(x) / 256;
                for (int j = 0; j < 8; j++)
                {
                    var xs = x.Slice(32 * j, 32);
                    ScaleSearch.ImportanceWeights(xs, qw.Slice(32 * j, 32), sigma2, weights);
                    float sw = 0;
                    foreach (float w in weights) sw += w;
                    subWeights[j] = sw;
                    scales[j] = ScaleSearch.AffineWeighted(15, xs, weights, levels.Slice(32 * j, 32), out mins[j], -0.9f, 0.05f, 36, clampCandidates: true);
                }
                d = ScaleSearch.PositiveWeighted(63, scales, scaleLevels, subWeights);
                dmin = ScaleSearch.PositiveWeighted(63, mins, minLevels, subWeights);
            }
            for (int j = 0; j < 8; j++) PackScaleMin(j, Math.Min((byte)63, scaleLevels[j]), Math.Min((byte)63, minLevels[j]), y.Slice(4, 12));
            GgmlHalf.WriteF16(y, d);
            GgmlHalf.WriteF16(y[2..], dmin);

            // Final levels against the stored (fp16, 6-bit) scales, as the decoder will see them.
            float dStored = GgmlHalf.ReadF16(y), dminStored = GgmlHalf.ReadF16(y[2..]);
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = ScaleMin(j, y.Slice(4, 12));
                float ds = dStored * sc;
                if (ds == 0) continue;
                float dm = dminStored * m;
                for (int l = 0; l < 32; l++)
                    levels[32 * j + l] = (byte)Math.Clamp(ScaleSearch.NearestInt((x[32 * j + l] + dm) / ds), 0, 15);
            }
            var qs = y.Slice(16, 128);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++)
                    qs[32 * c + l] = (byte)(levels[64 * c + l] | (levels[64 * c + 32 + l] << 4));
        }
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 256; b++)
        {
            var y = blocks.Slice(b * 144, 144);
            float d = GgmlHalf.ReadF16(y), dmin = GgmlHalf.ReadF16(y[2..]);
            var packed = y.Slice(4, 12);
            var qs = y.Slice(16, 128);
            var output = row.Slice(b * 256, 256);
            for (int c = 0; c < 4; c++)
            {
                var (sc0, m0) = ScaleMin(2 * c, packed);
                var (sc1, m1) = ScaleMin(2 * c + 1, packed);
                for (int l = 0; l < 32; l++)
                {
                    output[64 * c + l] = d * sc0 * (qs[32 * c + l] & 0x0F) - dmin * m0;
                    output[64 * c + 32 + l] = d * sc1 * (qs[32 * c + l] >> 4) - dmin * m1;
                }
            }
        }
    }

    /// <summary>Stores sub-block <paramref name="j"/>'s 6-bit scale and min into the 12 packed bytes.</summary>
    internal static void PackScaleMin(int j, byte scale, byte min, Span<byte> packed)
    {
        if (j < 4)
        {
            packed[j] = (byte)((packed[j] & 0xC0) | scale);
            packed[j + 4] = (byte)((packed[j + 4] & 0xC0) | min);
        }
        else
        {
            packed[j + 4] = (byte)((scale & 0x0F) | ((min & 0x0F) << 4));
            packed[j - 4] |= (byte)((scale >> 4) << 6);
            packed[j] |= (byte)((min >> 4) << 6);
        }
    }

    /// <summary>Reads sub-block <paramref name="j"/>'s 6-bit scale and min back.</summary>
    internal static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> packed) => j < 4
        ? (packed[j] & 63, packed[j + 4] & 63)
        : ((packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
}
