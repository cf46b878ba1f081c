using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// QuantSharp's own code packing: unsigned b-bit codes (b = 1 … 8) packed along each row into int32 words,
/// ⌊32/b⌋ codes per word, the first in the lowest bits (INC's compression_dtype int32 layout: 3-bit codes go ten to
/// a word and leave its top two bits zero). A row whose length is not a multiple is padded with zero codes, so
/// [rows, n] → [rows, ⌈n/⌊32/b⌋⌉]. For b ∈ {2, 4, 8} this is <see cref="BitPacking.PackInt32"/>'s natural order.
/// </summary>
public static class CodeWords
{
    public static int PerWord(int bits) => bits is >= 1 and <= 8
        ? 32 / bits
        : throw new QuantSharpException($"{bits}-bit codes: QuantSharp packs 1 to 8-bit codes.");

    public static long Words(long n, int bits) => (n + PerWord(bits) - 1) / PerWord(bits);

    /// <summary>[rows, n] integer codes in [0, 2^b) → int32 [rows, ⌈n/⌊32/b⌋⌉].</summary>
    public static Tensor Pack(Tensor codes, int bits)
    {
        int perWord = PerWord(bits);
        if (codes.dim() != 2) throw new ArgumentException("expected [rows, n] codes", nameof(codes));
        using var scope = NewDisposeScope();
        long rows = codes.shape[0], n = codes.shape[1], words = Words(n, bits);
        Tensor c = codes.to(ScalarType.Int64);
        if (c.lt(0).any().item<bool>() || c.ge(1L << bits).any().item<bool>())
            throw new ArgumentException($"codes outside [0, {1L << bits})", nameof(codes));
        if (words * perWord != n) c = nn.functional.pad(c, [0, words * perWord - n]);
        Tensor shifts = arange(0, perWord * bits, bits, ScalarType.Int64);
        Tensor word = c.reshape(rows, words, perWord).bitwise_left_shift(shifts).sum([2L], type: ScalarType.Int64);
        // Reinterpret the low 32 bits as a signed int32 (the bit pattern an unsigned word would have).
        word = where(word.ge(1L << 31), word - (1L << 32), word).to(ScalarType.Int32);
        return word.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Inverse of <see cref="Pack"/>: int32 [rows, words] → int64 codes [rows, n].</summary>
    public static Tensor Unpack(Tensor words, int bits, long n)
    {
        int perWord = PerWord(bits);
        using var scope = NewDisposeScope();
        Tensor w = words.to(ScalarType.Int64).bitwise_and(0xFFFFFFFFL);
        long rows = w.shape[0];
        Tensor shifts = arange(0, perWord * bits, bits, ScalarType.Int64);
        Tensor codes = w.unsqueeze(2).bitwise_right_shift(shifts).bitwise_and((1L << bits) - 1).reshape(rows, -1);
        return codes.narrow(1, 0, n).contiguous().MoveToOuterDisposeScope();
    }
}
