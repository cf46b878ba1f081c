namespace QuantSharp.Transforms;

/// <summary>
/// How a dimension n is cut into blocks for a group size g: ⌊n/g⌋ full blocks of size g, then a tail of n mod g
/// columns. The tail is cut into segments, each rotated by its own block of the same kind:
/// <list type="bullet">
/// <item>identity, dct, dst: one segment of the whole tail (these exist for every size).</item>
/// <item>hadamard, gsr, fast_food: greedily the largest supported Hadamard order (2^k, 12·2^k, 20·2^k) that fits in
/// what is left, repeatedly; order 1 always fits, so the walk ends (e.g. a tail of 100 → 96 + 4, of 7 → 4 + 2 + 1).</item>
/// </list>
/// Every segment is mixed only within itself, so the tail stays block-diagonal and orthogonal kinds stay orthogonal.
/// </summary>
public static class TransformBlockLayout
{
    /// <summary>Segment sizes for a tail of <paramref name="tailSize"/> columns (empty when 0).</summary>
    public static IReadOnlyList<int> TailSegments(TransformKind kind, int tailSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tailSize);
        if (tailSize == 0) return [];
        if (!NeedsHadamardOrder(kind)) return [tailSize];

        var segments = new List<int>();
        for (int left = tailSize; left > 0;)
        {
            int order = HadamardMatrices.LargestSupportedOrderAtMost(left);
            segments.Add(order);
            left -= order;
        }
        return segments;
    }

    /// <summary>Whether blocks of this kind are built on a Hadamard matrix, which exists only for some orders.</summary>
    public static bool NeedsHadamardOrder(TransformKind kind) =>
        kind is TransformKind.Hadamard or TransformKind.Gsr or TransformKind.FastFood;

    /// <summary>Whether a block of this size can be built for this kind.</summary>
    public static bool IsSupportedBlockSize(TransformKind kind, int size) =>
        size >= 1 && (!NeedsHadamardOrder(kind) || HadamardMatrices.IsSupportedOrder(size));
}
