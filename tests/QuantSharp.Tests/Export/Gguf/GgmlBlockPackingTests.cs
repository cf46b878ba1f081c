using QuantSharp.Export.Gguf.Blocks;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Tests.Export.Gguf;

/// <summary>
/// Known answers for each block layout, worked out by hand from the published ggml block definitions: scale bytes
/// (fp16 little-endian, E8M0), nibble order (value j low nibble, value j+16 high nibble of byte j), Q5_0's high-bit
/// word and Q4_K's 6-bit scale/min packing. Inputs are chosen so every scale is exact and the levels are obvious.
/// </summary>
public sealed class GgmlBlockPackingTests
{
    private static byte[] Quantize(GgmlType type, float[] row, float[]? importance = null) =>
        GgmlBlockCodecs.QuantizeRows(GgmlBlockCodecs.For(type), row, row.Length, importance);

    private static float[] Dequantize(GgmlType type, byte[] blocks, int n) =>
        GgmlBlockCodecs.DequantizeRows(GgmlBlockCodecs.For(type), blocks, n, n);

    [Fact]
    public void Q8_0_ScaleIsAmaxOver127_ValuesAreSignedBytes()
    {
        // amax 127 → d = 1.0 (fp16 0x3C00), q = x.
        var x = new float[32];
        x[0] = 127;
        for (int j = 1; j < 32; j++) x[j] = j % 2 == 0 ? j : -j;
        byte[] y = Quantize(GgmlType.Q8_0, x);
        Assert.Equal(34, y.Length);
        Assert.Equal(new byte[] { 0x00, 0x3C }, y[..2]);
        for (int j = 0; j < 32; j++) Assert.Equal((sbyte)x[j], (sbyte)y[2 + j]);
        Assert.Equal(x, Dequantize(GgmlType.Q8_0, y, 32));
    }

    [Fact]
    public void Q4_0_LowNibbleIsValueJ_HighNibbleIsValueJPlus16()
    {
        // The signed extreme −8 (first of largest magnitude) gives d = −8/−8 = 1; level = x + 8.
        var x = new float[32];
        for (int j = 0; j < 16; j++)
        {
            x[j] = j - 8;        // levels 0..15
            x[16 + j] = 7 - j;   // levels 15..0
        }
        byte[] y = Quantize(GgmlType.Q4_0, x);
        Assert.Equal(18, y.Length);
        Assert.Equal(new byte[] { 0x00, 0x3C }, y[..2]);
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | ((15 - j) << 4)), y[2 + j]);
        Assert.Equal(x, Dequantize(GgmlType.Q4_0, y, 32));
    }

    [Fact]
    public void Q4_1_StoresScaleThenMin()
    {
        // min 2, max 17 → d = 15/15 = 1 (0x3C00), m = 2 (0x4000); level = x − 2.
        var x = new float[32];
        for (int j = 0; j < 16; j++)
        {
            x[j] = 2 + j;
            x[16 + j] = 17 - j;
        }
        byte[] y = Quantize(GgmlType.Q4_1, x);
        Assert.Equal(20, y.Length);
        Assert.Equal(new byte[] { 0x00, 0x3C, 0x00, 0x40 }, y[..4]);
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | ((15 - j) << 4)), y[4 + j]);
        Assert.Equal(x, Dequantize(GgmlType.Q4_1, y, 32));
    }

    [Fact]
    public void Q5_0_FifthBitsFormALittleEndianWord()
    {
        // x = j − 16: the extreme −16 gives d = 1, level = j; values 16..31 have the fifth bit set → 0xFFFF0000.
        var x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = j - 16;
        byte[] y = Quantize(GgmlType.Q5_0, x);
        Assert.Equal(22, y.Length);
        Assert.Equal(new byte[] { 0x00, 0x3C, 0x00, 0x00, 0xFF, 0xFF }, y[..6]);
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | (j << 4)), y[6 + j]);
        Assert.Equal(x, Dequantize(GgmlType.Q5_0, y, 32));
    }

    [Fact]
    public void Q4_K_ScaleMinPacking_MatchesHandWorkedBytes()
    {
        byte[] sc = [63, 1, 2, 3, 40, 50, 60, 33];
        byte[] m = [0, 5, 10, 15, 20, 25, 30, 63];
        var packed = new byte[12];
        for (int j = 0; j < 8; j++) Q4_KCodec.PackScaleMin(j, sc[j], m[j], packed);
        // Sub-blocks 0–3 whole in bytes 0–7; 4–7 low nibbles in bytes 8–11, top two bits in bits 6–7 of bytes 0–7.
        // e.g. sub-block 4: sc 40 = 0b10_1000, m 20 = 0b01_0100 → byte 8 = 0x48, byte 0 |= 2<<6, byte 4 |= 1<<6.
        Assert.Equal(new byte[] { 0xBF, 0xC1, 0xC2, 0x83, 0x40, 0x45, 0x4A, 0xCF, 0x48, 0x92, 0xEC, 0xF1 }, packed);
        for (int j = 0; j < 8; j++) Assert.Equal((sc[j], m[j]), ((byte)Q4_KCodec.ScaleMin(j, packed).Scale, (byte)Q4_KCodec.ScaleMin(j, packed).Min));
    }

    [Fact]
    public void Q4_K_Dequantize_HandBuiltBlock_FollowsGgmlValueOrder()
    {
        // d = 1, dmin = 1; sub-block j: scale j+1, min j. Byte l of 32-byte chunk c holds value 64c+l (low nibble,
        // sub-block 2c) and 64c+32+l (high nibble, sub-block 2c+1).
        var y = new byte[144];
        y[0] = 0x00; y[1] = 0x3C; y[2] = 0x00; y[3] = 0x3C;
        for (int j = 0; j < 8; j++) Q4_KCodec.PackScaleMin(j, (byte)(j + 1), (byte)j, y.AsSpan(4, 12));
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[16 + 32 * c + l] = (byte)((l % 16) | ((15 - l % 16) << 4));
        float[] v = Dequantize(GgmlType.Q4_K, y, 256);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                Assert.Equal((2 * c + 1) * (l % 16) - 2 * c, v[64 * c + l]);
                Assert.Equal((2 * c + 2) * (15 - l % 16) - (2 * c + 1), v[64 * c + 32 + l]);
            }
    }

    [Fact]
    public void IQ4_NL_TableValuesWithUnitScale_RoundTripExactly()
    {
        // Values on the table with −127 present: the first guess d = −max/K[0] = 1 fits exactly and no try beats it.
        var x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = IQ4_NLCodec.Values[(j * 7) % 16];
        byte[] y = Quantize(GgmlType.IQ4_NL, x);
        Assert.Equal(18, y.Length);
        Assert.Equal(new byte[] { 0x00, 0x3C }, y[..2]);
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(((j * 7) % 16) | ((((j + 16) * 7) % 16) << 4)), y[2 + j]);
        Assert.Equal(x, Dequantize(GgmlType.IQ4_NL, y, 32));
    }

    [Fact]
    public void IQ4_NL_NearestIndex_TakesUpperEntryOnTies()
    {
        Assert.Equal(0, IQ4_NLCodec.NearestIndex(-1000));
        Assert.Equal(15, IQ4_NLCodec.NearestIndex(1000));
        Assert.Equal(8, IQ4_NLCodec.NearestIndex(1));
        Assert.Equal(9, IQ4_NLCodec.NearestIndex(7));      // exactly between K[8] = 1 and K[9] = 13
        Assert.Equal(8, IQ4_NLCodec.NearestIndex(6.99f));
    }

    [Fact]
    public void MxFp4_ScaleByteAndCodes_ForE2M1ValuesAtScaleOne()
    {
        // E2M1 codes 0..15 are ±{0, .5, 1, 1.5, 2, 3, 4, 6}. amax 6 → e = floor(log2 6) − 2 + 127 = 127 (scale 1).
        float[] e2m1 = [0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0f, -0.5f, -1, -1.5f, -2, -3, -4, -6];
        var x = new float[32];
        for (int j = 0; j < 16; j++)
        {
            x[j] = e2m1[j];
            x[16 + j] = e2m1[15 - j];
        }
        byte[] y = Quantize(GgmlType.MXFP4, x);
        Assert.Equal(17, y.Length);
        Assert.Equal(127, y[0]);
        // −0 takes code 0 (the first of two exact matches), so byte 7 = 7 | 0<<4 and byte 8 = 0 | 7<<4.
        for (int j = 0; j < 16; j++)
        {
            int lo = j == 8 ? 0 : j, hi = 15 - j == 8 ? 0 : 15 - j;
            Assert.Equal((byte)(lo | (hi << 4)), y[1 + j]);
        }
        Assert.Equal(x.Select(v => v == 0 ? 0f : v), Dequantize(GgmlType.MXFP4, y, 32));
    }

    [Fact]
    public void MxFp4_HalfScale_IsTwoToTheEMinus128()
    {
        Assert.Equal(0.5f, MxFp4Codec.HalfScale(127));
        Assert.Equal(1f, MxFp4Codec.HalfScale(128));
        Assert.Equal(MathF.Pow(2, -127), MxFp4Codec.HalfScale(1));
        Assert.Equal(MathF.Pow(2, -128), MxFp4Codec.HalfScale(0));
    }

    [Fact]
    public void F16_AndBF16_AreLittleEndianHalfWords()
    {
        float[] x = [1f, -2f, 0.5f, 65504f];
        Assert.Equal(new byte[] { 0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B }, Quantize(GgmlType.F16, x));
        Assert.Equal(new byte[] { 0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F, 0x80, 0x47 }, Quantize(GgmlType.BF16, x));
        Assert.Equal(new float[] { 1f, -2f, 0.5f, 65536f }, Dequantize(GgmlType.BF16, Quantize(GgmlType.BF16, x), 4));
    }
}
