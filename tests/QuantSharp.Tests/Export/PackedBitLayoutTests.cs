using QuantSharp.Export;
using QuantSharp.Formats;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export;

/// <summary>
/// Known-answer vectors for every packed layout, computed by hand from the published definitions (FP-Quant's
/// pack_fp4_to_uint8 and FP4_BITPACKING_PERM, compressed-tensors' pack_to_int32, AutoGPTQ's qweight/qzeros, AutoAWQ's
/// GEMM order), not from this code.
/// </summary>
public class PackedBitLayoutTests
{
    private static Tensor Codes(long rows, long cols, params long[] values) => tensor(values).reshape(rows, cols);

    [Fact]
    public void NibblesPutTheEvenColumnInTheLowHalf()
    {
        using var packed = BitPacking.PackNibbles(Codes(1, 4, 0x1, 0xF, 0x8, 0x7));
        Assert.Equal(ScalarType.Byte, packed.dtype);
        Assert.Equal(new byte[] { 0xF1, 0x78 }, packed.data<byte>().ToArray());
        using var back = BitPacking.UnpackNibbles(packed);
        Assert.Equal(new byte[] { 0x1, 0xF, 0x8, 0x7 }, back.data<byte>().ToArray());
    }

    [Fact]
    public void E2M1CodesMatchFpQuantsBitpackingPermutation()
    {
        // FP-Quant: FP4_GRID[i] is stored as FP4_BITPACKING_PERM[i] (quant_ops.py). Index 7 (−0 side) aside, every
        // grid value must encode to the same 4 bits under our one E2M1 rule.
        float[] grid = [-6f, -4f, -3f, -2f, -1.5f, -1f, -0.5f, 0f, 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];
        int[] perm = [15, 14, 13, 12, 11, 10, 9, 8, 0, 1, 2, 3, 4, 5, 6, 7];
        using var codes = MiniFloatFormat.E2M1.Encode(tensor(grid));
        var c = codes.data<byte>().ToArray();
        for (int i = 0; i < grid.Length; i++)
            if (i != 7) Assert.Equal(perm[i], c[i]);
        // FP-Quant writes 0x8 (negative zero) for zeros; both decode to 0, which is all a consumer computes.
        Assert.Equal(0f, MiniFloatFormat.E2M1.DecodeTable[8]);
    }

    [Fact]
    public void Int32WordsHoldTheFirstCodeInTheLowestBits()
    {
        // 4-bit: codes 1..8 → 0x87654321; as int32 that bit pattern is negative.
        using var w4 = BitPacking.PackInt32(Codes(1, 8, 1, 2, 3, 4, 5, 6, 7, 8), 4, dim: 1);
        Assert.Equal(unchecked((int)0x87654321), w4.data<int>()[0]);
        // 8-bit: 1, 2, 3, 4 → 0x04030201.
        using var w8 = BitPacking.PackInt32(Codes(1, 4, 1, 2, 3, 4), 8, dim: 1);
        Assert.Equal(0x04030201, w8.data<int>()[0]);
        // 2-bit: 3 then fifteen 0s, then the reverse.
        using var w2 = BitPacking.PackInt32(Codes(1, 16, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), 2, dim: 1);
        Assert.Equal(unchecked((int)0x40000003), w2.data<int>()[0]);
    }

    [Fact]
    public void GptqPacksQweightDownTheInputDimensionAndZerosAcrossOutputs()
    {
        // qweight [in/8, out]: input rows 0..7 of output column 0 hold 1..8 → word 0x87654321 at [0, 0].
        using var codes = Codes(8, 2, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 15); // [in=8, out=2]
        using var qweight = BitPacking.PackInt32(codes, 4, dim: 0);
        Assert.Equal(new long[] { 1, 2 }, qweight.shape);
        Assert.Equal(unchecked((int)0x87654321), qweight.data<int>()[0]);
        Assert.Equal(unchecked((int)0xF0000000), qweight.data<int>()[1]);
        // v1 symmetric 4-bit: zero point 8 stored as 7 in every nibble.
        using var zeros = full(1, 8, 7L, ScalarType.Int64);
        using var qzeros = BitPacking.PackInt32(zeros, 4, dim: 1);
        Assert.Equal(0x77777777, qzeros.data<int>()[0]);
    }

    [Fact]
    public void CompressedTensorsOffsetsSignedCodesBeforePacking()
    {
        // pack_to_int32 adds 2^(b−1): signed [−8, −1, 0, 7, 1, 2, 3, 4] → [0, 7, 8, 15, 9, 10, 11, 12] → 0xCBA9F870.
        long[] signed = [-8, -1, 0, 7, 1, 2, 3, 4];
        using var words = BitPacking.PackInt32(tensor(signed.Select(v => v + 8).ToArray()).reshape(1, 8), 4, dim: 1);
        Assert.Equal(unchecked((int)0xCBA9F870), words.data<int>()[0]);
    }

    [Fact]
    public void AwqInterleavesColumnsZeroTwoFourSixOneThreeFiveSeven()
    {
        // Column j holds code j: slot k (bits 4k..) holds column order[k] → nibbles 0,2,4,6,1,3,5,7 → 0x75316420.
        using var words = BitPacking.PackInt32(Codes(1, 8, 0, 1, 2, 3, 4, 5, 6, 7), 4, dim: 1, BitPacking.AwqOrder);
        Assert.Equal(0x75316420, words.data<int>()[0]);
        using var back = BitPacking.UnpackInt32(words, 4, dim: 1, BitPacking.AwqOrder);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 }, back.data<long>().ToArray());
    }

    [Theory]
    [InlineData(2, 0)]
    [InlineData(4, 0)]
    [InlineData(8, 0)]
    [InlineData(4, 1)]
    [InlineData(8, 1)]
    public void Int32PackingRoundTrips(int bits, int dim)
    {
        using var gen = new TorchSharp.torch.Generator(7);
        using var codes = randint(0, 1L << bits, [32, 64], generator: gen, dtype: ScalarType.Int64);
        using var words = BitPacking.PackInt32(codes, bits, dim);
        using var back = BitPacking.UnpackInt32(words, bits, dim);
        Assert.True(back.eq(codes).all().item<bool>());
    }

    [Fact]
    public void UnpackableWidthsAreClearErrors()
    {
        var e = Assert.Throws<QuantSharpException>(() => BitPacking.PackInt32(Codes(1, 6, 1, 2, 3, 4, 5, 6), 4, dim: 1));
        Assert.Contains("multiple of 8", e.Message);
        Assert.Throws<QuantSharpException>(() => BitPacking.PackInt32(Codes(1, 8, 1, 2, 3, 4, 5, 6, 7, 0), 3, dim: 1));
    }

    [Fact]
    public void ScaleBytesDecodeToTheEffectiveScales()
    {
        // E4M3 0x38 = 1.0, 0x7E = 448; with gs = 2 the effective scales are 0.5 and 224; byte 0 → 1 (an all-zero group).
        using var nv = NvFp4Scales.EffectiveFromBytes(tensor(new byte[] { 0x38, 0x7E, 0x00 }), tensor(new[] { 2f }));
        Assert.Equal(new[] { 0.5f, 224f, 1f }, nv.data<float>().ToArray());
        // E8M0 127 = 2^0, 130 = 2^3; FP-Quant's MXFP4 rule divides by its global 3.
        using var mx = MxFp4Scales.EffectiveFromBytes(tensor(new byte[] { 127, 130 }), 3f);
        Assert.Equal(new[] { 1f / 3f, 8f / 3f }, mx.data<float>().ToArray());
    }
}
