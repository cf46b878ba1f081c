using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// The bit layouts of packed checkpoints, as pure tensor functions (CPU, integer dtypes) so each one has a
/// known-answer test. Codes are unsigned (already offset into [0, 2^b − 1]); packing never changes a code.
/// </summary>
public static class BitPacking
{
    /// <summary>AutoAWQ's GEMM order: slot k of an int32 (bits 4k..4k+3) holds column order[k] of its 8.</summary>
    public static readonly int[] AwqOrder = [0, 2, 4, 6, 1, 3, 5, 7];

    /// <summary>
    /// Two 4-bit codes per byte along the last dimension: column 2j in the low nibble, 2j+1 in the high nibble
    /// (FP-Quant's pack_fp4_to_uint8 and compressed-tensors' pack_fp4_to_uint8 both do this). [rows, n] → [rows, n/2].
    /// </summary>
    public static Tensor PackNibbles(Tensor codes)
    {
        if (codes.dim() != 2 || codes.shape[1] % 2 != 0)
            throw new ArgumentException($"expected [rows, even columns] codes, got [{string.Join(", ", codes.shape)}]", nameof(codes));
        using var scope = NewDisposeScope();
        Tensor c = codes.to(ScalarType.Int32).bitwise_and(0xF);
        Tensor packed = c.slice(1, 0, c.shape[1], 2).bitwise_or(c.slice(1, 1, c.shape[1], 2).bitwise_left_shift(4));
        return packed.to(ScalarType.Byte).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Inverse of <see cref="PackNibbles"/>: uint8 [rows, n/2] → uint8 codes [rows, n].</summary>
    public static Tensor UnpackNibbles(Tensor packed)
    {
        using var scope = NewDisposeScope();
        Tensor p = packed.to(ScalarType.Int32);
        Tensor low = p.bitwise_and(0xF), high = p.bitwise_right_shift(4).bitwise_and(0xF);
        return stack([low, high], 2).reshape(packed.shape[0], packed.shape[1] * 2).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Packs unsigned b-bit codes (b ∈ {2, 4, 8}) into int32 along dimension <paramref name="dim"/> of a 2-D tensor:
    /// 32/b consecutive codes per word, the first in the lowest bits. <paramref name="order"/> (AWQ) names which
    /// code of each run of 32/b goes to slot k; null is the natural order. The words are returned as int32 with the
    /// same bit pattern an unsigned 32-bit value would have.
    /// </summary>
    public static Tensor PackInt32(Tensor codes, int bits, int dim, int[]? order = null)
    {
        int perWord = WordsFactor(bits);
        if (codes.dim() != 2) throw new ArgumentException("expected a 2-D code tensor", nameof(codes));
        if (codes.shape[dim] % perWord != 0)
            throw new QuantSharpException($"dimension {dim} of size {codes.shape[dim]} is not a multiple of {perWord} ({bits}-bit codes per int32).");
        if (order is not null && order.Length != perWord) throw new ArgumentException("order must have 32/bits entries", nameof(order));
        using var scope = NewDisposeScope();
        Tensor c = (dim == 0 ? codes.t() : codes).to(ScalarType.Int64).bitwise_and((1L << bits) - 1);
        long rows = c.shape[0], words = c.shape[1] / perWord;
        Tensor grouped = c.reshape(rows, words, perWord);
        if (order is not null) grouped = grouped.index_select(2, tensor(order.Select(i => (long)i).ToArray()));
        Tensor shifts = arange(0, perWord * bits, bits, ScalarType.Int64);
        // Sum in int64 (no overflow), then reinterpret the low 32 bits as a signed int32.
        Tensor word = grouped.bitwise_left_shift(shifts).sum([2L], type: ScalarType.Int64);
        word = torch.where(word.ge(1L << 31), word - (1L << 32), word).to(ScalarType.Int32);
        return (dim == 0 ? word.t() : word).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Inverse of <see cref="PackInt32"/>: int32 words → unsigned codes (int64) along <paramref name="dim"/>.</summary>
    public static Tensor UnpackInt32(Tensor words, int bits, int dim, int[]? order = null)
    {
        int perWord = WordsFactor(bits);
        using var scope = NewDisposeScope();
        Tensor w = (dim == 0 ? words.t() : words).to(ScalarType.Int64).bitwise_and(0xFFFFFFFFL);
        long rows = w.shape[0], n = w.shape[1];
        Tensor shifts = arange(0, perWord * bits, bits, ScalarType.Int64);
        Tensor slots = w.unsqueeze(2).bitwise_right_shift(shifts).bitwise_and((1L << bits) - 1); // [rows, n, perWord]
        if (order is not null)
        {
            // slot k holds column order[k]: scatter back by the inverse permutation.
            var inverse = new long[perWord];
            for (int k = 0; k < perWord; k++) inverse[order[k]] = k;
            slots = slots.index_select(2, tensor(inverse));
        }
        Tensor codes = slots.reshape(rows, n * perWord);
        return (dim == 0 ? codes.t() : codes).contiguous().MoveToOuterDisposeScope();
    }

    private static int WordsFactor(int bits) => bits is 2 or 4 or 8
        ? 32 / bits
        : throw new QuantSharpException($"{bits}-bit codes cannot be packed into int32 words evenly (supported: 2, 4, 8 bits).");
}
