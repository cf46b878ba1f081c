using QuantSharp.Algorithms.Gptq;
using QuantSharp.Formats;
using QuantSharp.Quantizers;
using TorchSharp;
using Xunit.Abstractions;
using static QuantSharp.Tests.Formats.TensorAssert;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms;

public class GptqSolverTests(ITestOutputHelper output)
{
    public static TheoryData<string, QuantSpec, GptqOptions> Configurations() => new()
    {
        { "int4 g32 static", QuantSpec.Int(4, 32), new GptqOptions() },
        { "int4 g32 classic", QuantSpec.Int(4, 32), new GptqOptions { StaticGroups = false } },
        { "int4 g32 act-order", QuantSpec.Int(4, 32), new GptqOptions { ActOrder = true } },
        { "int4 asym g32 mse", QuantSpec.Int(4, 32, symmetric: false, observer: ObserverKind.Mse), new GptqOptions() },
        { "nvfp4 static", QuantSpec.NvFp4(), new GptqOptions() },
        { "nvfp4 act-order", QuantSpec.NvFp4(), new GptqOptions { ActOrder = true } },
        { "nvfp4 gar classic", QuantSpec.NvFp4(), new GptqOptions { GroupAwareReorder = true, StaticGroups = false } },
        { "mxfp4 gar", QuantSpec.MxFp4(), new GptqOptions { GroupAwareReorder = true, BlockSize = 48 } },
        { "int8 per-channel", QuantSpec.Int(8, QuantSpec.PerChannel), new GptqOptions() },
        { "fp8 per-channel", QuantSpec.Fp8(), new GptqOptions() },
        { "nf4 g32 static", new QuantSpec(QuantFormat.Nf4, 4, 32), new GptqOptions() },
        { "fp4 bnb g32 act-order", new QuantSpec(QuantFormat.Fp4Bnb, 4, 32), new GptqOptions { ActOrder = true } },
        { "int3 asym g32 clip-search double-quant", QuantSpec.Int(3, 32, symmetric: false, observer: ObserverKind.ClipSearch) with { DoubleQuant = new DoubleQuantSpec() }, new GptqOptions() },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void GptqBeatsRoundToNearestOnTheLayerOutput(string name, QuantSpec spec, GptqOptions options)
    {
        using var layer = new GptqTestLayer(seed: 42);
        var q = WeightQuantizer.Create(spec);
        using var scope = NewDisposeScope();
        using var rtnParams = q.ComputeParams(layer.W);
        double rtn = layer.OutputError(q.QuantizeDequantize(layer.W, rtnParams));
        using var result = GptqSolver.Quantize(layer.W, layer.H, q, options with { LayerName = name });
        double gptq = layer.OutputError(result.Weight);
        output.WriteLine($"{name}: output error GPTQ {gptq:G4} vs RTN {rtn:G4} (ratio {gptq / rtn:F3}), relative error {result.RelativeError:G3}");
        Assert.True(gptq < rtn, $"{name}: GPTQ output error {gptq:G4} is not below RTN's {rtn:G4}");
        Assert.Empty(result.Warnings);
        Assert.InRange(result.RelativeError, 1e-8, 0.5);
        // Everything GPTQ produced is on the grid of the parameters it returns (what export will pack).
        Close(Floats(result.Weight), Floats(q.QuantizeDequantize(result.Weight, result.Params)), 1e-6f, 1e-7f);
    }

    [Fact]
    public void ActOrderWithStaticGroupsKeepsOriginalGroupMembership()
    {
        using var layer = new GptqTestLayer(seed: 9);
        using var scope = NewDisposeScope();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 32));
        using var result = GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { ActOrder = true });
        Assert.NotNull(result.Permutation);
        long[] perm = result.Permutation!.data<long>().ToArray();
        Assert.Equal(Enumerable.Range(0, 256).Select(i => (long)i), perm.Order());
        Assert.NotEqual(Enumerable.Range(0, 256).Select(i => (long)i), perm);
        // The params are those of the original weight's groups, computed before reordering...
        using var expected = q.ComputeParams(layer.W);
        Exact(Floats(expected.Scale), Floats(result.Params.Scale));
        // ...and every quantized value of original group k is representable with group k's params: each column
        // re-quantizes to itself with the params of the group its original index falls in.
        for (int k = 0; k < 8; k++)
        {
            Tensor groupColumns = result.Weight.narrow(1, 32 * k, 32);
            Close(Floats(groupColumns), Floats(q.QuantizeDequantize(groupColumns, result.Params, 32 * k)), 1e-6f, 1e-7f);
            Tensor codes = q.Codes(groupColumns, result.Params, 32 * k);
            Tensor scale = result.Params.Scale.narrow(1, k, 1);
            Close(Floats(groupColumns), Floats(codes.to(ScalarType.Float32).mul(scale)), 1e-6f, 1e-7f);
        }
    }

    [Fact]
    public void NvFp4ActOrderKeepsGroupScalesAndGlobalScale()
    {
        using var layer = new GptqTestLayer(seed: 10);
        using var scope = NewDisposeScope();
        var q = WeightQuantizer.Create(QuantSpec.NvFp4());
        using var result = GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { ActOrder = true });
        using var expected = q.ComputeParams(layer.W);
        Assert.Equal(Bytes(expected.ScaleBytes!), Bytes(result.Params.ScaleBytes!));
        Exact(Floats(NvFp4Scales.GlobalScaleOf(layer.W)), Floats(result.Params.GlobalScale!));
        Tensor codes = q.Codes(result.Weight, result.Params);
        Close(Floats(result.Weight), Floats(q.Dequantize(codes, result.Params)), 1e-6f, 1e-7f);
    }

    [Fact]
    public void ClassicGroupsAreComputedFromTheUpdatedWeight()
    {
        using var layer = new GptqTestLayer(seed: 12);
        using var scope = NewDisposeScope();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 32));
        using var classic = GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { StaticGroups = false, BlockSize = 40 });
        using var original = q.ComputeParams(layer.W);
        Assert.Equal(new long[] { 64, 8 }, classic.Params.Scale.shape);
        // Group 0 sees no earlier updates; later groups do, so their scales differ from the original weight's.
        Exact(Floats(original.Scale.narrow(1, 0, 1)), Floats(classic.Params.Scale.narrow(1, 0, 1)));
        Assert.NotEqual(Floats(original.Scale.narrow(1, 7, 1)), Floats(classic.Params.Scale.narrow(1, 7, 1)));
        Close(Floats(classic.Weight), Floats(q.QuantizeDequantize(classic.Weight, classic.Params)), 1e-6f, 1e-7f);
    }

    [Fact]
    public void ClassicGroupsInOneWideBlockUseTheOriginalWeightAsIncDoes()
    {
        // INC's GPTQ (block_size 2048) reads a group's parameters from the weight as it stood at the start of the
        // block; a 256-column layer is one block, so every group is parameterised from the original weight and the
        // solve equals the static-groups solve exactly.
        using var layer = new GptqTestLayer(seed: 12);
        using var scope = NewDisposeScope();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 32, symmetric: false));
        using var classic = GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { StaticGroups = false, BlockSize = 2048 });
        using var staticGroups = GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { StaticGroups = true, BlockSize = 2048 });
        using var original = q.ComputeParams(layer.W);
        Exact(Floats(original.Scale), Floats(classic.Params.Scale));
        Exact(Floats(staticGroups.Weight), Floats(classic.Weight));
    }

    [Fact]
    public void GroupAwareReorderKeepsGroupsContiguous()
    {
        using var scope = NewDisposeScope();
        Tensor diag = tensor(new float[] { 1, 9, 2, 3, /* g1 */ 5, 4, 8, 0, /* g2 */ 7, 6, 1, 2 });
        long[] perm = ColumnOrder.GroupAware(diag, 4).data<long>().ToArray();
        // group maxima 9, 8, 7 → groups 0, 1, 2; inside by descending diag
        Assert.Equal(new long[] { 1, 3, 2, 0, 6, 4, 5, 7, 8, 9, 11, 10 }, perm);
    }

    [Fact]
    public void IndefiniteHessianTriggersTheDampeningRetry()
    {
        using var scope = NewDisposeScope();
        // 2×2 blocks [[1, 1.05], [1.05, 1]] have eigenvalue −0.05: damp 0.01 fails, 0.1 succeeds.
        Tensor block = tensor(new float[] { 1f, 1.05f, 1.05f, 1f }).reshape(2, 2);
        Tensor h = block_diag(Enumerable.Repeat(block, 32).ToArray());
        manual_seed(2);
        Tensor w = randn(8, 64);
        var seen = new List<string>();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 16));
        using var result = GptqSolver.Quantize(w, h, q, new GptqOptions { LayerName = "blk.0.up_proj", OnWarning = seen.Add });
        Assert.Equal(1, result.DampRetries);
        Assert.Equal(0.1, result.Damp, 1e-6);
        string warning = Assert.Single(result.Warnings);
        Assert.Equal(warning, Assert.Single(seen));
        Assert.Contains("blk.0.up_proj", warning);
        Assert.Contains("retrying", warning);
    }

    [Fact]
    public void HopelessHessianIsAnErrorNamingTheLayer()
    {
        using var scope = NewDisposeScope();
        Tensor block = tensor(new float[] { 1f, 1e6f, 1e6f, 1f }).reshape(2, 2);
        Tensor h = block_diag(Enumerable.Repeat(block, 8).ToArray());
        Tensor w = ones(4, 16);
        var warnings = new List<string>();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 16));
        var e = Assert.Throws<HessianNotPositiveDefiniteException>(() =>
            GptqSolver.Quantize(w, h, q, new GptqOptions { LayerName = "blk.5.down_proj", OnWarning = warnings.Add }));
        Assert.Contains("blk.5.down_proj", e.Message);
        Assert.Equal(5, warnings.Count);
    }

    [Fact]
    public void DeadColumnsGetZeroWeight()
    {
        int[] dead = [5, 17, 100];
        using var layer = new GptqTestLayer(seed: 4, deadColumns: dead);
        using var scope = NewDisposeScope();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 32));
        using var result = GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { ActOrder = true });
        Assert.Equal(3, result.DeadColumns);
        Assert.Empty(result.Warnings);
        foreach (int c in dead) Assert.All(Floats(result.Weight.narrow(1, c, 1)), v => Assert.Equal(0f, v));
        Assert.True(Floats(result.Weight).All(float.IsFinite));
        using var rtnParams = q.ComputeParams(layer.W);
        Assert.True(layer.OutputError(result.Weight) < layer.OutputError(q.QuantizeDequantize(layer.W, rtnParams)));
    }

    [Fact]
    public void RelativeErrorFollowsFpQuantsDefinition()
    {
        using var layer = new GptqTestLayer(seed: 21);
        using var scope = NewDisposeScope();
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 32));
        using var result = GptqSolver.Quantize(layer.W, layer.H, q);
        Tensor damped = layer.H.add(eye(256), alpha: result.Damp);
        Tensor delta = result.Weight.sub(layer.W);
        double expected = delta.matmul(damped).mul(delta).mean().item<float>()
            / (layer.W.matmul(damped).mul(layer.W).mean().item<float>() + 1e-6);
        Assert.Equal(expected, result.RelativeError, expected * 1e-3);
    }

    [Fact]
    public void ActOrderNeedsStaticGroupsOrGar()
    {
        using var layer = new GptqTestLayer(seed: 1, outFeatures: 4, inFeatures: 64, tokens: 128);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 16));
        var e = Assert.Throws<QuantSharpException>(() =>
            GptqSolver.Quantize(layer.W, layer.H, q, new GptqOptions { ActOrder = true, StaticGroups = false, LayerName = "L" }));
        Assert.Contains("'L'", e.Message);
    }

    /// <summary>
    /// Weights that share an input (q/k/v) are solved together against one factorised Hessian; rows never interact in
    /// GPTQ, so each result must equal its own separate solve, own NVFP global scale and relative error included.
    /// </summary>
    [Theory]
    [InlineData("nvfp4-act-order")]
    [InlineData("int4-g64-asym")]
    public void SharedSolveEqualsSeparateSolves(string config)
    {
        using var layer = new GptqTestLayer(seed: 7);
        using var scope = NewDisposeScope();
        var (spec, options) = config == "nvfp4-act-order"
            ? (QuantSpec.NvFp4(), new GptqOptions { ActOrder = true })
            : (QuantSpec.Int(4, 64, symmetric: false), new GptqOptions());
        var quantizer = WeightQuantizer.Create(spec);
        Tensor a = layer.W, b = layer.W.narrow(0, 0, 40).mul(3.0).contiguous();
        var shared = GptqSolver.QuantizeShared([a, b], layer.H, quantizer, options, [null, null]);
        foreach (var (weight, result) in new[] { (a, shared[0]), (b, shared[1]) })
        {
            using var alone = GptqSolver.Quantize(weight, layer.H, quantizer, options);
            Assert.Equal(alone.Weight.shape, result.Weight.shape);
            Assert.True(alone.Weight.allclose(result.Weight, rtol: 0, atol: 1e-6), $"{config}: shared solve differs from a separate one");
            Assert.Equal(alone.RelativeError, result.RelativeError, 6);
            Assert.True(alone.Params.Scale.allclose(result.Params.Scale, rtol: 0, atol: 0));
            if (alone.Params.GlobalScale is not null) Assert.True(alone.Params.GlobalScale.allclose(result.Params.GlobalScale!, rtol: 0, atol: 0));
        }
        foreach (var r in shared) r.Dispose();
    }

    /// <summary>Handing the Hessian over (to save an [in, in] copy on wide layers) gives the same solve as cloning it.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ConsumedHessianGivesTheSameSolve(bool actOrder)
    {
        using var layer = new GptqTestLayer(seed: 11);
        using var scope = NewDisposeScope();
        var quantizer = WeightQuantizer.Create(QuantSpec.NvFp4());
        var options = new GptqOptions { ActOrder = actOrder };
        using var cloned = GptqSolver.Quantize(layer.W, layer.H, quantizer, options);
        Tensor owned = layer.H.clone();
        var consumed = GptqSolver.QuantizeShared([layer.W], owned, quantizer, options, [null], consumeHessian: true)[0];
        Assert.True(cloned.Weight.allclose(consumed.Weight, rtol: 0, atol: 0), "consuming the Hessian changed the quantized weight");
        Assert.Equal(cloned.RelativeError, consumed.RelativeError, 6);
        consumed.Dispose();
        owned.Dispose();
    }
}
