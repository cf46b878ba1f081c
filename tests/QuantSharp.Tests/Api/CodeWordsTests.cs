using QuantSharp.Export;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Api;

public class CodeWordsTests
{
    [Fact]
    public void ThreeBitCodesGoTenToAWordLowestFirst()
    {
        // Codes 0..10 (mod 8): ten in the first word at bits 3k, the eleventh alone in a second, zero-padded word.
        long[] codes = Enumerable.Range(0, 11).Select(i => (long)(i % 8)).ToArray();
        using var packed = CodeWords.Pack(tensor(codes, [1, 11]), 3);
        Assert.Equal([1L, 2L], packed.shape);
        long expected = 0;
        for (int k = 0; k < 10; k++) expected |= (long)(k % 8) << (3 * k);
        Assert.Equal((int)expected, packed[0, 0].item<int>());
        Assert.Equal(2, packed[0, 1].item<int>()); // code 10 % 8 = 2
        using var back = CodeWords.Unpack(packed, 3, 11);
        Assert.Equal(codes, back.data<long>().ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    public void EveryWidthRoundTripsAndMatchesTheGptqOrderWhereItDivides(int bits)
    {
        var gen = new Random(bits);
        long[] codes = Enumerable.Range(0, 3 * 64).Select(_ => (long)gen.Next(1 << bits)).ToArray();
        using var c = tensor(codes, [3, 64]);
        using var packed = CodeWords.Pack(c, bits);
        using var back = CodeWords.Unpack(packed, bits, 64);
        Assert.Equal(codes, back.data<long>().ToArray());
        if (bits is 2 or 4 or 8)
        {
            using var gptq = BitPacking.PackInt32(c, bits, dim: 1);
            Assert.True(gptq.eq(packed).all().item<bool>());
        }
        // The top bit of a word can be set: 8 codes of 15 fill all 32 bits.
        if (bits == 4)
        {
            using var allSet = CodeWords.Pack(full(1, 8, 15L, ScalarType.Int64), 4);
            Assert.Equal(-1, allSet.item<int>());
        }
    }
}
