using QuantSharp.Backend;
using QuantSharp.Transforms;
using TorchSharp;
using static TorchSharp.torch;
using static QuantSharp.Tests.Transforms.TensorComparison;

namespace QuantSharp.Tests.Transforms;

public sealed class BlockTransformTests
{
    private static readonly int[] Dimensions = [64, 96, 384, 1408, 768];
    private static readonly int[] GroupSizes = [16, 32, 64, 128];

    public BlockTransformTests() => TorchRuntime.EnsureNativeLoaded();

    /// <summary>Square shapes, the Paley-based orders and tails of every flavour (n, g).</summary>
    private static readonly (int N, int G)[] OrthogonalityShapes =
    [
        (12, 12), (20, 20), (24, 24), (40, 40), (48, 48), (128, 128),
        (96, 12), (768, 48), (1408, 128),
        (100, 64),  // tail 36 → 32 + 4
        (200, 128), // tail 72 → 64 + 8
        (100, 40),  // tail 20
        (130, 128), // tail 2
        (7, 4),     // tail 3 → 2 + 1
    ];

    public static TheoryData<string, int, int> OrthogonalCases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string variant in TransformVariants.Orthogonal)
            foreach ((int n, int g) in OrthogonalityShapes)
                data.Add(variant, n, g);
        return data;
    }

    public static TheoryData<string, int, int> GridCases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string variant in TransformVariants.All)
            foreach (int n in Dimensions)
                foreach (int g in GroupSizes.Where(g => g <= n))
                    data.Add(variant, n, g);
        return data;
    }

    [Theory]
    [MemberData(nameof(OrthogonalCases))]
    public void Orthogonal_transforms_satisfy_m_times_m_transpose_equals_identity(string variant, int n, int g)
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = TransformVariants.Create(variant, n, g);
        Assert.True(transform.IsOrthogonal);
        Assert.Equal(ScalarType.Float32, transform.DType);
        double error = OrthogonalityError(transform.DenseMatrix());
        Assert.True(error < 1e-5, $"{variant} n={n} g={g}: max |M·Mᵀ − I| = {error:E2}");
        Assert.Same(transform.ForwardBlock, transform.BackwardBlock);
    }

    [Theory]
    [MemberData(nameof(GridCases))]
    public void Folding_into_weights_leaves_the_linear_output_unchanged(string variant, int n, int g)
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = TransformVariants.Create(variant, n, g);
        var generator = new Generator(1234, CPU);
        Tensor x = randn(new long[] { 5, n }, generator: generator);
        Tensor w = randn(new long[] { 7, n }, generator: generator);

        Tensor expected = x.matmul(w.t());
        Tensor actual = transform.ApplyToActivations(x).matmul(transform.FoldIntoWeight(w).t());
        double error = RelativeError(actual, expected);
        Assert.True(error < 1e-4, $"{variant} n={n} g={g}: relative error {error:E2}");
    }

    [Theory]
    [MemberData(nameof(GridCases))]
    public void Unfolding_a_folded_weight_restores_it(string variant, int n, int g)
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = TransformVariants.Create(variant, n, g);
        Tensor w = randn(new long[] { 7, n }, generator: new Generator(7, CPU));
        Tensor x = randn(new long[] { 5, n }, generator: new Generator(8, CPU));
        Tensor folded = transform.FoldIntoWeight(w);
        double error = RelativeError(transform.UnfoldFromWeight(folded), w);
        Assert.True(error < 1e-4, $"{variant} n={n} g={g}: unfold(fold(W)) relative error {error:E2}");
        // Any folded weight (e.g. a quantized one) unfolds to the plain weight that gives the same outputs.
        Tensor q = folded.round();
        double outputs = RelativeError(x.matmul(transform.UnfoldFromWeight(q).t()), transform.ApplyToActivations(x).matmul(q.t()));
        Assert.True(outputs < 1e-4, $"{variant} n={n} g={g}: unfolded quantized weight changes outputs by {outputs:E2}");
    }

    [Theory]
    [MemberData(nameof(GridCases))]
    public void Applying_to_activations_equals_multiplying_by_the_dense_matrix(string variant, int n, int g)
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = TransformVariants.Create(variant, n, g);
        Tensor x = randn(new long[] { 5, n }, generator: new Generator(99, CPU));
        Tensor dense = transform.DenseMatrix();
        Assert.Equal(new long[] { n, n }, dense.shape);
        double error = RelativeError(transform.ApplyToActivations(x), x.matmul(dense));
        Assert.True(error < 1e-5, $"{variant} n={n} g={g}: relative error {error:E2}");
    }

    [Theory]
    [InlineData(64, 128)]
    [InlineData(96, 128)]
    public void Grid_shapes_with_group_larger_than_dimension_are_refused(int n, int g)
    {
        foreach (string variant in TransformVariants.All)
            Assert.Throws<QuantSharpException>(() => TransformVariants.Create(variant, n, g));
    }

    [Theory]
    [InlineData(128, 128)]
    [InlineData(100, 64)]
    [InlineData(96, 12)]
    public void Fast_food_is_not_orthogonal_and_its_backward_is_the_inverse_transpose(int n, int g)
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = BlockTransform.Create(TransformKind.FastFood, n, g, seed: 3, dtype: ScalarType.Float64);
        Assert.False(transform.IsOrthogonal);
        Tensor m = transform.DenseMatrix();
        Assert.True(OrthogonalityError(m) > 1e-2);

        // FoldIntoWeight(I) = I·M⁻ᵀ, so M·(M⁻ᵀ)ᵀ = M·M⁻¹ must be I.
        Tensor backward = transform.FoldIntoWeight(eye(n, dtype: ScalarType.Float64));
        Assert.True(MaxAbsDifference(m.matmul(backward.t()), eye(n, dtype: ScalarType.Float64)) < 1e-10);
        Assert.True(MaxAbsDifference(transform.BackwardBlock, linalg.inv(transform.ForwardBlock).t()) < 1e-10);
    }

    [Fact]
    public void Fast_food_follows_the_fastfood_product_scale()
    {
        // M = (√g/σ)·S·Hn·G·Π·Hn·B stretches a vector by about √(2g) on average (S, G, B, Π, Hn preserve norm in
        // expectation); checks the constant, not just invertibility.
        using var scope = NewDisposeScope();
        const int g = 128;
        using BlockTransform transform = BlockTransform.Create(TransformKind.FastFood, 4096, g, seed: 11, dtype: ScalarType.Float64);
        Tensor x = randn(new long[] { 64, 4096 }, dtype: ScalarType.Float64, generator: new Generator(5, CPU));
        double ratio = transform.ApplyToActivations(x).square().sum().sqrt().item<double>() / x.square().sum().sqrt().item<double>();
        Assert.InRange(ratio / Math.Sqrt(2 * g), 0.7, 1.3);
    }

    [Fact]
    public void Same_seed_gives_the_same_blocks_and_another_seed_different_ones()
    {
        using var scope = NewDisposeScope();
        using BlockTransform a = BlockTransform.Create(TransformKind.FastFood, 256, 64, seed: 5);
        using BlockTransform b = BlockTransform.Create(TransformKind.FastFood, 256, 64, seed: 5);
        using BlockTransform c = BlockTransform.Create(TransformKind.FastFood, 256, 64, seed: 6);
        Assert.True(Identical(a.ForwardBlock, b.ForwardBlock));
        Assert.False(Identical(a.ForwardBlock, c.ForwardBlock));

        using BlockTransform signed1 = BlockTransform.Create(TransformKind.Hadamard, 256, 64, seed: 5, randomSigns: true);
        using BlockTransform signed2 = BlockTransform.Create(TransformKind.Hadamard, 256, 64, seed: 6, randomSigns: true);
        using BlockTransform plain = BlockTransform.Create(TransformKind.Hadamard, 256, 64);
        Assert.False(Identical(signed1.ForwardBlock, signed2.ForwardBlock));
        // Random signs flip whole rows of H: |entries| are unchanged.
        Assert.True(Identical(signed1.ForwardBlock.abs(), plain.ForwardBlock.abs()));
    }

    [Fact]
    public void Hadamard_block_is_what_fp_quant_exports()
    {
        // FP-Quant exports hadamard(g)/√g (scipy's Sylvester order) as both forward_ and backward_hadamard_matrix.
        using var scope = NewDisposeScope();
        using BlockTransform transform = BlockTransform.Create(TransformKind.Hadamard, 4096, 32);
        Tensor expected = HadamardMatrices.Orthonormal(32).to_type(ScalarType.Float32);
        Assert.True(Identical(transform.ForwardBlock, expected));
        Assert.True(Identical(transform.BackwardBlock, expected));
    }

    [Theory]
    [InlineData("hadamard", 100, 64, new[] { 32, 4 })]
    [InlineData("gsr", 7, 4, new[] { 2, 1 })]
    [InlineData("fast_food", 200, 128, new[] { 64, 8 })]
    [InlineData("hadamard", 18944, 96, new[] { 32 })]
    [InlineData("hadamard", 29568, 128, new int[0])]
    [InlineData("dct", 100, 64, new[] { 36 })]
    [InlineData("dst", 1408, 96, new[] { 64 })]
    [InlineData("identity", 100, 64, new[] { 36 })]
    public void Tail_is_cut_by_the_documented_rule(string variant, int n, int g, int[] segments)
    {
        Assert.Equal(segments, TransformBlockLayout.TailSegments(TransformKinds.Parse(variant), n % g));
        using BlockTransform transform = TransformVariants.Create(variant, n, g);
        Assert.Equal(segments, transform.TailSegments);
        Assert.Equal(n / g, transform.BlockCount);
        Assert.Equal(n % g, transform.TailSize);
        Assert.Equal(n % g == 0, transform.ForwardTail is null);
    }

    [Theory]
    [InlineData("hadamard", 29568, 128)] // Qwen2.5-32B intermediate width, 2^7·231
    [InlineData("gsr", 18944, 128)]      // Qwen2.5-7B intermediate width, 2^8·74
    [InlineData("hadamard", 18944, 96)]  // 12·8 blocks with a 32-wide tail
    [InlineData("fast_food", 1408, 96)]
    [InlineData("dct", 29568, 100)]
    public void Wide_qwen_dimensions_round_trip(string variant, int n, int g)
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = TransformVariants.Create(variant, n, g);
        var generator = new Generator(21, CPU);
        Tensor x = randn(new long[] { 3, n }, generator: generator);
        Tensor w = randn(new long[] { 4, n }, generator: generator);
        double error = RelativeError(transform.ApplyToActivations(x).matmul(transform.FoldIntoWeight(w).t()), x.matmul(w.t()));
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }

    [Fact]
    public void Activations_keep_their_dtype_and_leading_shape()
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = BlockTransform.Create(TransformKind.Hadamard, 256, 128);
        Tensor x = randn(new long[] { 2, 3, 256 }, generator: new Generator(8, CPU));
        Tensor reference = transform.ApplyToActivations(x);
        Assert.Equal(x.shape, reference.shape);

        Tensor rotatedBf16 = transform.ApplyToActivations(x.to_type(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, rotatedBf16.dtype);
        Assert.True(RelativeError(rotatedBf16, reference) < 1e-2);

        Tensor w = randn(new long[] { 4, 256 }, generator: new Generator(9, CPU)).to_type(ScalarType.BFloat16);
        Tensor folded = transform.FoldIntoWeight(w);
        Assert.Equal(ScalarType.BFloat16, folded.dtype);
        Assert.True(RelativeError(folded, w.to_type(ScalarType.Float32).matmul(transform.DenseMatrix())) < 1e-2);
    }

    [Fact]
    public void To_copies_the_blocks_into_another_dtype()
    {
        using var scope = NewDisposeScope();
        using BlockTransform single = BlockTransform.Create(TransformKind.FastFood, 200, 64, seed: 2);
        using BlockTransform wide = single.To(CPU, ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, wide.DType);
        Assert.Equal(single.TailSegments, wide.TailSegments);
        Assert.True(MaxAbsDifference(wide.DenseMatrix(), single.DenseMatrix()) == 0);
        Assert.True(MaxAbsDifference(wide.BackwardTail!, single.BackwardTail!) == 0);
    }

    [Fact]
    public void Disposed_transform_refuses_use()
    {
        var transform = BlockTransform.Create(TransformKind.Dct, 64, 16);
        transform.Dispose();
        transform.Dispose();
        Assert.Throws<ObjectDisposedException>(() => transform.ForwardBlock);
        using Tensor x = zeros(1, 64);
        Assert.Throws<ObjectDisposedException>(() => transform.ApplyToActivations(x));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-16)]
    [InlineData(65)]
    public void Bad_group_size_names_the_flag(int groupSize)
    {
        var error = Assert.Throws<QuantSharpException>(() => BlockTransform.Create(TransformKind.Hadamard, 64, groupSize));
        Assert.Contains(TransformFlags.GroupSize, error.Message);
        Assert.Contains(groupSize.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message);
    }

    [Fact]
    public void Group_size_that_is_no_hadamard_order_is_refused_for_hadamard_kinds_only()
    {
        foreach (TransformKind kind in new[] { TransformKind.Hadamard, TransformKind.Gsr, TransformKind.FastFood })
        {
            var error = Assert.Throws<QuantSharpException>(() => BlockTransform.Create(kind, 360, 36));
            Assert.Contains(TransformFlags.GroupSize, error.Message);
            Assert.Contains("32", error.Message); // the nearest supported order below
        }
        using BlockTransform dct = BlockTransform.Create(TransformKind.Dct, 360, 36);
        Assert.Equal(10, dct.BlockCount);
    }

    [Fact]
    public void Random_signs_are_refused_for_other_kinds()
    {
        var error = Assert.Throws<QuantSharpException>(() => BlockTransform.Create(TransformKind.Dct, 64, 16, randomSigns: true));
        Assert.Contains(TransformFlags.Kind, error.Message);
    }

    [Fact]
    public void Wrong_last_dimension_is_reported()
    {
        using var scope = NewDisposeScope();
        using BlockTransform transform = BlockTransform.Create(TransformKind.Hadamard, 64, 16);
        var error = Assert.Throws<QuantSharpException>(() => transform.ApplyToActivations(zeros(2, 32)));
        Assert.Contains("64", error.Message);
        Assert.Throws<QuantSharpException>(() => transform.FoldIntoWeight(zeros(64)));
    }
}
