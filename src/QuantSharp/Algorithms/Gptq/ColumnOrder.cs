using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>Processing orders for GPTQ's column loop (all int64 permutations: position → original column).</summary>
public static class ColumnOrder
{
    /// <summary>Act-order: descending diag(H).</summary>
    public static Tensor ActOrder(Tensor hessianDiagonal) => hessianDiagonal.argsort(descending: true);

    /// <summary>
    /// Group-aware reordering: groups of <paramref name="groupSize"/> consecutive columns sorted by their largest
    /// diag(H) (descending), and inside each group columns by diag(H) (descending); a group's columns stay contiguous,
    /// so each group is still finished before the next starts.
    /// </summary>
    public static Tensor GroupAware(Tensor hessianDiagonal, int groupSize)
    {
        long columns = hessianDiagonal.shape[0];
        if (groupSize <= 0 || columns % groupSize != 0) throw new ArgumentException($"group size {groupSize} does not divide {columns}", nameof(groupSize));
        using var scope = NewDisposeScope();
        Tensor perGroup = hessianDiagonal.reshape(columns / groupSize, groupSize);
        Tensor groupOrder = perGroup.amax([1]).argsort(descending: true);
        Tensor withinGroup = perGroup.argsort(1, descending: true);
        Tensor firstColumn = groupOrder.mul(groupSize).unsqueeze(1);
        return withinGroup.index_select(0, groupOrder).add(firstColumn).reshape(columns).MoveToOuterDisposeScope();
    }
}
