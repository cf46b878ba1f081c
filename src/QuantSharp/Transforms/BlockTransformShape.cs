namespace QuantSharp.Transforms;

/// <summary>The validated parameters of a <see cref="BlockTransform"/>, without its tensors.</summary>
internal sealed record BlockTransformShape(
    TransformKind Kind, int Dimension, int GroupSize, long Seed, bool RandomSigns, IReadOnlyList<int> TailSegments)
{
    /// <exception cref="QuantSharpException">A parameter a user chose (through a flag or a model) is unusable.</exception>
    public static BlockTransformShape Validate(TransformKind kind, int dimension, int groupSize, long seed, bool randomSigns)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a defined transform kind");
        string name = kind.Name();
        if (dimension <= 0)
            throw new QuantSharpException($"{name} transform: the dimension to transform must be positive, not {dimension}.");
        if (groupSize <= 0)
            throw new QuantSharpException($"{TransformFlags.GroupSize} {groupSize}: the group size must be positive.");
        if (groupSize > dimension)
            throw new QuantSharpException($"{TransformFlags.GroupSize} {groupSize}: larger than the dimension {dimension} it would transform; use a group size of at most {dimension}.");
        if (!TransformBlockLayout.IsSupportedBlockSize(kind, groupSize))
        {
            int below = HadamardMatrices.LargestSupportedOrderAtMost(groupSize);
            throw new QuantSharpException($"{TransformFlags.GroupSize} {groupSize}: {name} needs a Hadamard order (2^k, 12·2^k or 20·2^k), e.g. {below}.");
        }
        if (randomSigns && kind != TransformKind.Hadamard)
            throw new QuantSharpException($"{TransformFlags.Kind} {name}: random signs apply only to the hadamard transform.");

        return new BlockTransformShape(kind, dimension, groupSize, seed, randomSigns,
            TransformBlockLayout.TailSegments(kind, dimension % groupSize));
    }
}
