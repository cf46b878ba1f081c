using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Transforms;

/// <summary>The transforms under test by name: the six kinds plus "random_hadamard" (hadamard with random signs).</summary>
internal static class TransformVariants
{
    public const string RandomHadamard = "random_hadamard";

    public static readonly string[] Orthogonal = ["identity", "hadamard", RandomHadamard, "dct", "dst", "gsr"];
    public static readonly string[] All = [.. Orthogonal, "fast_food"];

    public static BlockTransform Create(string variant, int dimension, int groupSize, long seed = 7,
        ScalarType dtype = ScalarType.Float32) =>
        variant == RandomHadamard
            ? BlockTransform.Create(TransformKind.Hadamard, dimension, groupSize, seed, dtype: dtype, randomSigns: true)
            : BlockTransform.Create(TransformKinds.Parse(variant), dimension, groupSize, seed, dtype: dtype);
}
