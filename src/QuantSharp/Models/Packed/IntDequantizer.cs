using QuantSharp.Formats;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>The weight of unpacked unsigned INT codes: W[o, i] = (u[o, i] − z[o, g(i)]) · s[o, g(i)], via <see cref="IntGrid.Dequantize"/>.</summary>
internal static class IntDequantizer
{
    /// <param name="codes">[out, in] unsigned codes.</param>
    /// <param name="zeros">[out, groups] zero points.</param>
    /// <param name="scales">[out, groups] float scales.</param>
    /// <param name="groupOfColumn">[in] group index of each input column (int64).</param>
    public static Tensor Dequantize(Tensor codes, Tensor zeros, Tensor scales, Tensor groupOfColumn)
    {
        using var scope = NewDisposeScope();
        Tensor s = scales.to(float32).index_select(1, groupOfColumn);
        Tensor z = zeros.to(float32).index_select(1, groupOfColumn);
        return IntGrid.Dequantize(codes.to(float32), s, z).MoveToOuterDisposeScope();
    }

    /// <summary>i / g for every column: contiguous groups.</summary>
    public static Tensor ContiguousGroups(long columns, long groupSize) =>
        arange(columns, ScalarType.Int64).div(groupSize, RoundingMode.floor);
}
