using QuantSharp.Formats;
using QuantSharp.Quantizers;
using static QuantSharp.Tests.Formats.TensorAssert;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantizers;

public class WeightQuantizerTests
{
    public static TheoryData<QuantSpec> AllSpecs() =>
    [
        QuantSpec.Int(4, 32),
        QuantSpec.Int(3, 16, symmetric: false),
        QuantSpec.Int(8, QuantSpec.PerChannel),
        QuantSpec.Int(4, QuantSpec.PerTensor, observer: ObserverKind.Mse),
        QuantSpec.Fp(32),
        QuantSpec.Fp(QuantSpec.PerChannel, ObserverKind.Mse),
        QuantSpec.MxFp4(),
        QuantSpec.MxFp4(MxScaleRule.Ocp, ObserverKind.Mse),
        QuantSpec.NvFp4(),
        QuantSpec.NvFp4(ObserverKind.Mse),
        QuantSpec.Fp8(),
        QuantSpec.Fp8(QuantSpec.PerTensor, E4M3Variant.Gaudi),
    ];

    [Theory]
    [MemberData(nameof(AllSpecs))]
    public void CodesDequantizeToTheFakeQuantizedWeight(QuantSpec spec)
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        Tensor w = randn(8, 64);
        var q = WeightQuantizer.Create(spec);
        using var p = q.ComputeParams(w);
        Tensor dq = q.QuantizeDequantize(w, p);
        Tensor back = q.Dequantize(q.Codes(w, p), p);
        Exact(Floats(dq), Floats(back));
        // Fake-quantizing again is a no-op: every output is on its group's grid.
        Exact(Floats(dq), Floats(q.QuantizeDequantize(dq, p)));
        double relError = (dq - w).norm().item<float>() / w.norm().item<float>();
        Assert.True(relError < 0.25, $"relative error {relError}");
    }

    [Theory]
    [MemberData(nameof(AllSpecs))]
    public void ColumnRunsMatchTheWholeTensor(QuantSpec spec)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        Tensor w = randn(4, 64);
        var q = WeightQuantizer.Create(spec);
        using var p = q.ComputeParams(w);
        float[] whole = Floats(q.QuantizeDequantize(w, p));
        foreach (var (first, count) in new[] { (0, 1), (5, 1), (63, 1), (16, 16), (3, 40), (32, 32), (10, 3) })
        {
            float[] part = Floats(q.QuantizeDequantize(w.narrow(1, first, count), p, first));
            float[] expected = Floats(tensor(whole).reshape(4, 64).narrow(1, first, count));
            Exact(expected, part);
        }
    }

    [Fact]
    public void FpFormatScaleIsAbsMaxOverSix()
    {
        using var w = Matrix(1, 3f, -1f, 0.5f, 0.25f, 0.1f, 0.2f, -0.6f, 0f);
        var q = WeightQuantizer.Create(QuantSpec.Fp(4));
        using var p = q.ComputeParams(w);
        Close([0.5f, 0.1f], Floats(p.Scale));
        Assert.Null(p.ScaleBytes);
        using var dq = q.QuantizeDequantize(w, p);
        // group 1 / 0.1: [1, 2, −6, 0] exactly on the grid
        Close([3f, -1f, 0.5f, 0.25f, 0.1f, 0.2f, -0.6f, 0f], Floats(dq));
    }

    [Fact]
    public void Fp8PerChannelScaleIsAbsMaxOver448()
    {
        using var w = Matrix(2, 448f, 1f, 17f, -0.5f, 2f, 1.0625f);
        var q = WeightQuantizer.Create(QuantSpec.Fp8());
        using var p = q.ComputeParams(w);
        Close([1f, 2f / 448f], Floats(p.Scale));
        using var codes = q.Codes(w, p);
        Assert.Equal(new byte[] { 0x7E, 0x38, 0x58 }, Bytes(codes)[..3]); // 448, 1, 17 → 16 (tie to even)
        using var dq = q.QuantizeDequantize(w, p);
        Close([448f, 1f, 16f], Floats(dq)[..3]);
    }

    [Fact]
    public void MseObserverShrinksAGroupWithAnOutlier()
    {
        // FP4 group of 16: fifteen values of magnitude 4.8 and one outlier 6. The min/max scale (1) puts the bulk at
        // 4.8 → 4 (error 0.8 each, Σ|e|^2.4 ≈ 8.8). Shrinking lifts the bulk to the grid point 6·f and clips the
        // outlier to 6·f: Σ = 15·|4.8 − 6f|^2.4 + (6 − 6f)^2.4, smallest on the search grid at f = 1 − 22·0.008 = 0.824
        // (≈ 1.28; f = 0.816 gives ≈ 1.32, f = 0.832 ≈ 1.31).
        float[] values = [.. Enumerable.Range(0, 15).Select(i => i % 2 == 0 ? 4.8f : -4.8f), 6f];
        using var w = Matrix(1, values);
        var minmax = WeightQuantizer.Create(QuantSpec.Fp(16));
        var mse = WeightQuantizer.Create(QuantSpec.Fp(16, ObserverKind.Mse));
        using var p0 = minmax.ComputeParams(w);
        using var p1 = mse.ComputeParams(w);
        Exact([1f], Floats(p0.Scale));
        Close([0.824f], Floats(p1.Scale));
        Assert.True(PowError(w, minmax.QuantizeDequantize(w, p1)) < PowError(w, minmax.QuantizeDequantize(w, p0)));
    }

    [Fact]
    public void MseObserverKeepsTheFullRangeWhenItIsExact()
    {
        // Every value is on the E2M1 grid scaled by 0.5 = absmax/6: factor 1 has zero error and ties keep it.
        float[] values = [3f, -3f, 2f, -2f, 1.5f, -1.5f, 1f, -1f, 0.75f, -0.75f, 0.5f, -0.5f, 0.25f, -0.25f, 0f, 3f];
        using var w = Matrix(1, values);
        var mse = WeightQuantizer.Create(QuantSpec.Fp(16, ObserverKind.Mse));
        using var p = mse.ComputeParams(w);
        Exact([0.5f], Floats(p.Scale));
    }

    [Fact]
    public void MseSearchUsesTheUnroundedScaleThenRoundsIt()
    {
        // NVFP4 + MSE: the winning scale must still be an E4M3 value over the global scale.
        using var scope = NewDisposeScope();
        manual_seed(3);
        Tensor w = randn(4, 64);
        var q = WeightQuantizer.Create(QuantSpec.NvFp4(ObserverKind.Mse));
        using var p = q.ComputeParams(w);
        Tensor stored = MiniFloatFormat.E4M3.Decode(p.ScaleBytes!);
        Close(Floats(stored.mul(p.GlobalScale!.reciprocal())), Floats(p.Scale));
    }

    private static double PowError(Tensor x, Tensor y) => (x - y).abs().pow(2.4).sum().item<float>();
}
