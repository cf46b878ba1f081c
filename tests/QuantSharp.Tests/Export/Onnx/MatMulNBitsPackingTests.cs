using QuantSharp.Export.Onnx;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export.Onnx;

/// <summary>Known-answer bytes of the MatMulNBits layouts, worked out by hand from ORT's contrib-op schema.</summary>
public sealed class MatMulNBitsPackingTests
{
    [Fact]
    public void FourBit_TwoCodesPerByte_LowNibbleFirst()
    {
        // One row, K = 32, two blocks of 16: codes 0..15 then 15..0.
        byte[] codes = [.. Enumerable.Range(0, 16).Select(i => (byte)i), .. Enumerable.Range(0, 16).Select(i => (byte)(15 - i))];
        byte[] packed = MatMulNBitsPacking.PackWeights(codes, 1, 32, 4, 16);
        Assert.Equal(new byte[] { 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01 }, packed);
    }

    [Fact]
    public void EightBit_OneCodePerByte_InKOrder()
    {
        byte[] codes = [.. Enumerable.Range(0, 32).Select(i => (byte)(i * 8 + 3))];
        Assert.Equal(codes, MatMulNBitsPacking.PackWeights(codes, 2, 16, 8, 16));
    }

    [Fact]
    public void FourBitZeroPoints_PackPerRow_OddBlockCountPadsEachRow()
    {
        // Two rows of three blocks: each row takes ceil(3·4/8) = 2 bytes, the last high nibble unused (0).
        byte[] zeros = [1, 2, 3, 15, 0, 9];
        Assert.Equal(2, MatMulNBitsPacking.ZeroPointRowBytes(3, 4));
        Assert.Equal(new byte[] { 0x21, 0x03, 0x0F, 0x09 }, MatMulNBitsPacking.PackZeroPoints(zeros, 2, 3, 4));
    }

    [Fact]
    public void EightBitZeroPoints_AreOneBytePerBlock()
    {
        byte[] zeros = [128, 0, 255, 7, 9, 200];
        Assert.Equal(zeros, MatMulNBitsPacking.PackZeroPoints(zeros, 2, 3, 8));
    }

    [Fact]
    public void SymmetricFourBit_OurSignedCodesShiftByEight_NoZeroPointInput()
    {
        // absmax 7.5 → scale 2·7.5/15 = 1; codes round(w) on [−8, 7] (−7.5 rounds half-to-even to −8); stored code + 8.
        float[] w = [0, 1, 2, 3, 4, 5, 6, 7, -1, -2, -3, -4, -5, -6, -7, -7.5f];
        using var weight = tensor(w).reshape(1, 16);
        var q = MatMulNBitsWeights.Quantize(weight, new OnnxExportOptions(Bits: 4, BlockSize: 16), "w");
        // stored codes 8..15, 7..0
        Assert.Equal(new byte[] { 0x98, 0xBA, 0xDC, 0xFE, 0x67, 0x45, 0x23, 0x01 }, q.Packed);
        Assert.Equal(new[] { 1f }, q.Scales);
        Assert.Null(q.ZeroPoints);
        Assert.Equal(w.Select(v => v == -7.5f ? -8f : v).ToArray(), q.Dequantize());
    }

    [Fact]
    public void AsymmetricFourBit_StoresCodesAndPackedZeroPoint()
    {
        // min −2, max 13 → scale 15/15 = 1, zero round(2/1) = 2, codes w + 2 = 0..15.
        float[] w = [.. Enumerable.Range(-2, 16).Select(i => (float)i)];
        using var weight = tensor(w).reshape(1, 16);
        var q = MatMulNBitsWeights.Quantize(weight, new OnnxExportOptions(Bits: 4, BlockSize: 16, Symmetric: false), "w");
        Assert.Equal(new byte[] { 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE }, q.Packed);
        Assert.Equal(new[] { 1f }, q.Scales);
        Assert.Equal(new byte[] { 0x02 }, q.ZeroPoints);
        Assert.Equal(w, q.Dequantize());
    }

    [Fact]
    public void SymmetricEightBit_OurSignedCodesShiftBy128()
    {
        // absmax 127.5 → scale 255/255 = 1; −127.5 rounds half-to-even to −128 → stored 0.
        float[] w = [0, 1, -1, 127, -127.5f, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, -3];
        using var weight = tensor(w).reshape(1, 16);
        var q = MatMulNBitsWeights.Quantize(weight, new OnnxExportOptions(Bits: 8, BlockSize: 16), "w");
        Assert.Equal(new byte[] { 128, 129, 127, 255, 0, 133, 128, 128, 128, 128, 128, 128, 128, 128, 128, 125 }, q.Packed);
        Assert.Equal(new[] { 1f }, q.Scales);
        Assert.Null(q.ZeroPoints);
    }

    [Theory]
    [InlineData(4, 32, true)]
    [InlineData(4, 64, false)]
    [InlineData(4, 128, false)]
    [InlineData(4, 128, true)]
    [InlineData(8, 32, false)]
    [InlineData(8, 128, true)]
    public void DecodedBytes_EqualOurQuantizeDequantize(int bits, int blockSize, bool symmetric)
    {
        // K = 384 gives an odd block count at 128 (zero points padded per row).
        using var scope = NewDisposeScope();
        var w = randn(24, 384, generator: new TorchSharp.torch.Generator(7));
        var options = new OnnxExportOptions(bits, blockSize, symmetric);
        var q = MatMulNBitsWeights.Quantize(w, options, "w");
        Assert.Equal(24 * (384 / blockSize) * MatMulNBitsPacking.BlobSize(bits, blockSize), q.Packed.Length);
        Assert.Equal(24 * (384 / blockSize), q.Scales.Length);
        var quantizer = MatMulNBitsWeights.QuantizerFor(options);
        using var p = quantizer.ComputeParams(w);
        float[] expected = quantizer.QuantizeDequantize(w, p).data<float>().ToArray();
        Assert.Equal(expected, q.Dequantize());
    }

    [Theory]
    [InlineData(3, 128, "--bits 3")]
    [InlineData(4, 48, "--block-size 48")]
    [InlineData(4, 8, "--block-size 8")]
    public void UnsupportedOptions_NameTheFlag(int bits, int blockSize, string flag)
    {
        var e = Assert.Throws<QuantSharpException>(() => new OnnxExportOptions(bits, blockSize).Validate());
        Assert.StartsWith(flag, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BlockSizeNotDividingTheWidth_NamesFlagAndTensor()
    {
        using var w = zeros(4, 96);
        var e = Assert.Throws<QuantSharpException>(() => MatMulNBitsWeights.Quantize(w, new OnnxExportOptions(4, 64), "model.layers.0.mlp.down_proj.weight"));
        Assert.Contains("--block-size 64", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.layers.0.mlp.down_proj.weight", e.Message, StringComparison.Ordinal);
    }
}
