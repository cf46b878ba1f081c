using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// MXFP4 in ggml's layout: blocks of 32 as [E8M0 exponent byte e][16 bytes of E2M1 codes], code order as Q4_0 (byte j:
/// value j low nibble, value j+16 high nibble). ggml keeps the E2M1 values doubled as integers
/// {0,1,2,3,4,6,8,12} (and negatives, code 8+) and halves the scale: value = K[code]·2^(e−128) = E2M1(code)·2^(e−127).
/// Scale rule (OCP MX): e = floor(log2 amax) − 2 + 127, so the largest value lands in [4, 8) of the element grid;
/// each value takes the nearest code (first code on ties, as ggml searches).
/// ggml ignores the importance matrix for this type.
/// </summary>
internal sealed class MxFp4Codec : IGgmlBlockCodec
{
    internal static readonly sbyte[] DoubledValues = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    public GgmlType Type => GgmlType.MXFP4;
    public int BlockValues => 32;
    public int BlockBytes => 17;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        Span<byte> codes = stackalloc byte[32];
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = blocks.Slice(b * 17, 17);
            float amax = 0;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            byte e = amax > 0 ? (byte)(MathF.Floor(MathF.Log2(amax)) - 2 + 127) : (byte)0;
            float half = HalfScale(e);
            y[0] = e;
            for (int j = 0; j < 32; j++) codes[j] = NearestCode(x[j], half);
            Q4_0Codec.PackNibbles(codes, y[1..]);
        }
    }

    /// <summary>2^(e−128): ggml's E8M0 "half" scale (exact for every e, subnormal below e = 2).</summary>
    internal static float HalfScale(byte e) =>
        BitConverter.UInt32BitsToSingle(e < 2 ? 0x00200000u << e : (uint)(e - 1) << 23);

    private static byte NearestCode(float v, float half)
    {
        int best = 0;
        float bestErr = MathF.Abs(DoubledValues[0] * half - v);
        for (int i = 1; i < 16; i++)
        {
            float err = MathF.Abs(DoubledValues[i] * half - v);
            if (err < bestErr) { best = i; bestErr = err; }
        }
        return (byte)best;
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var y = blocks.Slice(b * 17, 17);
            float half = HalfScale(y[0]);
            for (int j = 0; j < 16; j++)
            {
                row[b * 32 + j] = DoubledValues[y[1 + j] & 0x0F] * half;
                row[b * 32 + j + 16] = DoubledValues[y[1 + j] >> 4] * half;
            }
        }
    }
}
