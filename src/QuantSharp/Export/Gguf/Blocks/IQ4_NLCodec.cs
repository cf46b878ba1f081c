using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// IQ4_NL: blocks of 32 as [fp16 d][16 bytes], value = d·K[q] with the fixed non-uniform table K (ggml's
/// kvalues_iq4nl), nibbles in Q4_0's order. The scale search (ggml's quantize_row_iq4_nl_impl with 7 tries each way):
/// start from d = −max/K[0], fit the weighted least-squares scale for the resulting indices, then try the 15 inverse
/// scales (t + K[0])/max, t = −7..7, keeping the best weighted fit; finally re-pick every index with the chosen scale.
/// Weights are x² without an importance matrix, imatrix·sqrt(σ²+x²) with one (σ² = 2·mean x² of the block).
/// </summary>
internal sealed class IQ4_NLCodec : IGgmlBlockCodec
{
    internal static readonly sbyte[] Values = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
    private const int Tries = 7;

    public GgmlType Type => GgmlType.IQ4_NL;
    public int BlockValues => 32;
    public int BlockBytes => 18;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        Span<byte> levels = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = blocks.Slice(b * 18, 18);
            float sigma2 = 2 * ScaleSearch.SumSquares(x) / 32;
            if (importance.IsEmpty)
                for (int j = 0; j < 32; j++) weights[j] = x[j] * x[j];
            else
                ScaleSearch.ImportanceWeights(x, importance.Slice(b * 32, 32), sigma2, weights);
            float d = BestScale(x, weights, levels);
            GgmlHalf.WriteF16(y, d);
            Q4_0Codec.PackNibbles(levels, y[2..]);
        }
    }

    private static float BestScale(ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> levels)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
            if (MathF.Abs(v) > amax) { amax = MathF.Abs(v); max = v; }
        if (amax < ScaleSearch.GroupMaxEps)
        {
            levels.Clear();
            return 0f;
        }
        float d = -max / Values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < x.Length; j++)
        {
            float q = Values[NearestIndex(id * x[j])];
            sumqx += weights[j] * q * x[j];
            sumq2 += weights[j] * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0f;
        float best = d * sumqx;
        for (int t = -Tries; t <= Tries; t++)
        {
            id = (t + Values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < x.Length; j++)
            {
                float q = Values[NearestIndex(id * x[j])];
                sumqx += weights[j] * q * x[j];
                sumq2 += weights[j] * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
            {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        float inv = d != 0 ? 1 / d : 0;
        for (int j = 0; j < x.Length; j++) levels[j] = (byte)NearestIndex(inv * x[j]);
        return d;
    }

    /// <summary>Index of the table entry nearest to v; a value exactly between two entries takes the upper one.</summary>
    internal static int NearestIndex(float v)
    {
        float v2 = v + v;
        int index = 0;
        for (int step = 8; step > 0; step >>= 1)
        {
            int j = index + step;
            if (v2 >= Values[j - 1] + Values[j]) index = j;
        }
        return index;
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var y = blocks.Slice(b * 18, 18);
            float d = GgmlHalf.ReadF16(y);
            for (int j = 0; j < 16; j++)
            {
                row[b * 32 + j] = d * Values[y[2 + j] & 0x0F];
                row[b * 32 + j + 16] = d * Values[y[2 + j] >> 4];
            }
        }
    }
}
