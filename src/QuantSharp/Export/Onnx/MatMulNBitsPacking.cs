namespace QuantSharp.Export.Onnx;

/// <summary>
/// Byte layouts of com.microsoft.MatMulNBits (ONNX Runtime's contrib-op schema). The weight W [N, K] (out × in) is cut
/// along K into blocks of block_size; B is uint8 [N, k_blocks, blob_size] with blob_size = block_size·bits/8, codes
/// packed in K order, 4-bit codes two per byte, the first in the low nibble. Zero points are uint8 [N, ceil(k_blocks·bits/8)]:
/// for 4 bits two per byte (low nibble first), each row padded to whole bytes on its own; for 8 bits one per byte.
/// Without zero points ORT uses 2^(bits−1), i.e. 8 or 128.
/// </summary>
public static class MatMulNBitsPacking
{
    public static bool IsSupportedBits(int bits) => bits is 4 or 8;

    public static int BlobSize(int bits, int blockSize) => blockSize * bits / 8;

    /// <summary>The zero point ORT assumes when the zero_points input is absent.</summary>
    public static int DefaultZeroPoint(int bits) => 1 << (bits - 1);

    /// <summary>
    /// Packs unsigned codes (row-major [n, k], each in [0, 2^bits − 1]) into B's [n, k/blockSize, blob] bytes.
    /// </summary>
    public static byte[] PackWeights(ReadOnlySpan<byte> codes, int n, int k, int bits, int blockSize)
    {
        CheckShape(codes.Length, n, k, bits, blockSize);
        if (bits == 8) return codes.ToArray();
        var packed = new byte[(long)n * k / 2];
        for (long i = 0; i < packed.Length; i++)
        {
            // k and blockSize are even, so consecutive code pairs never straddle a row or a block.
            byte lo = codes[(int)(2 * i)], hi = codes[(int)(2 * i + 1)];
            CheckCode(lo, bits);
            CheckCode(hi, bits);
            packed[i] = (byte)(lo | (hi << 4));
        }
        return packed;
    }

    /// <summary>Bytes per row of the packed zero points: ceil(kBlocks·bits/8).</summary>
    public static int ZeroPointRowBytes(int kBlocks, int bits) => (kBlocks * bits + 7) / 8;

    /// <summary>Packs zero points (row-major [n, kBlocks], each in [0, 2^bits − 1]) into [n, ZeroPointRowBytes] bytes.</summary>
    public static byte[] PackZeroPoints(ReadOnlySpan<byte> zeros, int n, int kBlocks, int bits)
    {
        if (!IsSupportedBits(bits)) throw new ArgumentOutOfRangeException(nameof(bits), bits, "MatMulNBits packing supports 4 and 8 bits");
        if (zeros.Length != n * kBlocks) throw new ArgumentException($"{zeros.Length} zero points for [{n}, {kBlocks}]", nameof(zeros));
        if (bits == 8) return zeros.ToArray();
        int rowBytes = ZeroPointRowBytes(kBlocks, bits);
        var packed = new byte[n * rowBytes]; // an odd row's last high nibble stays 0: padding ORT never reads
        for (int r = 0; r < n; r++)
        {
            for (int b = 0; b < kBlocks; b++)
            {
                byte z = zeros[r * kBlocks + b];
                CheckCode(z, bits);
                packed[r * rowBytes + b / 2] |= (byte)(b % 2 == 0 ? z : z << 4);
            }
        }
        return packed;
    }

    private static void CheckShape(int count, int n, int k, int bits, int blockSize)
    {
        if (!IsSupportedBits(bits)) throw new ArgumentOutOfRangeException(nameof(bits), bits, "MatMulNBits packing supports 4 and 8 bits");
        if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "MatMulNBits needs a power-of-two block size of at least 16");
        if (k % blockSize != 0) throw new ArgumentException($"block size {blockSize} does not divide K = {k}", nameof(blockSize));
        if (count != (long)n * k) throw new ArgumentException($"{count} codes for [{n}, {k}]", nameof(count));
    }

    private static void CheckCode(byte code, int bits)
    {
        if (code >> bits != 0) throw new ArgumentOutOfRangeException(nameof(code), code, $"code does not fit {bits} bits");
    }
}
