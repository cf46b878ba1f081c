using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Transforms;

/// <summary>
/// Right-multiplies the last dimension of a tensor by a block-diagonal matrix diag(B, …, B, T) without forming it:
/// the full groups are viewed as [..., blocks, g] and multiplied by B in one batched matmul (one GEMM of
/// [rows·blocks, g]×[g, g] underneath), the tail by T. Work is O(rows·n·g) instead of O(rows·n²).
/// </summary>
internal static class BlockDiagonalProduct
{
    /// <param name="x">[..., n] floating-point; the result has x's shape, dtype and device.</param>
    /// <param name="block">[g, g], any floating dtype/device: cast to x's when they differ (cheap, g² values).</param>
    /// <param name="tail">[t, t] for the last t = n mod g columns, or null when g divides n.</param>
    public static Tensor Multiply(Tensor x, Tensor block, Tensor? tail)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[^1];
        long g = block.shape[0];
        long tailSize = tail?.shape[0] ?? 0;
        long blocks = (n - tailSize) / g;
        long[] leading = x.shape[..^1];

        Tensor full = tailSize == 0 ? x : x.narrow(-1, 0, blocks * g);
        Tensor rotated = full.reshape([.. leading, blocks, g])
            .matmul(Like(block, x))
            .reshape([.. leading, blocks * g]);
        if (tail is null) return rotated.MoveToOuterDisposeScope();

        Tensor rotatedTail = x.narrow(-1, blocks * g, tailSize).matmul(Like(tail, x));
        return cat(new[] { rotated, rotatedTail }, -1).MoveToOuterDisposeScope();
    }

    private static Tensor Like(Tensor matrix, Tensor x) =>
        matrix.dtype == x.dtype && matrix.device_type == x.device_type && matrix.device_index == x.device_index ? matrix : matrix.to(x.dtype, x.device);
}
