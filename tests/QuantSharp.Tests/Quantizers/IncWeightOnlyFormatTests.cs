using QuantSharp.Formats;
using QuantSharp.Quantizers;
using TorchSharp;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Quantizers;

/// <summary>Intel Neural Compressor's weight-only data types and RTN extras: known answers worked out by hand.</summary>
public class IncWeightOnlyFormatTests
{
    [Fact]
    public void LevelTablesHoldTheExactPublishedValues()
    {
        Assert.Equal(16, LevelTable.Nf4.Levels.Length);
        Assert.Equal(-1f, LevelTable.Nf4.Levels[0]);
        Assert.Equal(0f, LevelTable.Nf4.Levels[7]);
        Assert.Equal(0.07958029955625534f, LevelTable.Nf4.Levels[8]);
        Assert.Equal(0.7229568362236023f, LevelTable.Nf4.Levels[14]);
        Assert.Equal(new float[] { -12, -8, -6, -4, -3, -2, -0.0625f, 0, 0.0625f, 2, 3, 4, 6, 8, 12 }, LevelTable.Fp4Bnb.Levels);
        Assert.Equal(12f, LevelTable.Fp4Bnb.MaxLevel);
        // INC's fp4_e2m1: E2M1/6 but with bitsandbytes' 0.0625 subnormal (so not our fp format).
        Close([0f, 0.0625f / 6, 1f / 6, 0.25f, 2f / 6, 0.5f, 4f / 6, 1f], LevelTable.Fp4E2M1Inc.Levels[7..]);
        // INC's own 4-bit codes (its *_BIT tables masked to 4 bits).
        Assert.Equal(new byte[] { 7, 1, 2, 3, 4, 5, 6, 0, 8, 9, 10, 11, 12, 13, 14, 15 }, LevelTable.Nf4.IncBitCodes);
        Assert.Equal(new byte[] { 11, 10, 13, 12, 15, 14, 9, 0, 1, 6, 7, 4, 5, 2, 3 }, LevelTable.Fp4Bnb.IncBitCodes);
    }

    [Fact]
    public void Nf4ScaleIsAbsMaxAndCodesAreLevelIndices()
    {
        // absmax 2 → scale 2; x/2 = [−1, −0.6962, 0, 0.15, 1]: 0.15 lies above the 0.0796/0.1609 midpoint 0.1203 → level 9.
        using var w = Matrix(1, -2f, -1.3923856f, 0f, 0.3f, 2f);
        var q = WeightQuantizer.Create(new QuantSpec(QuantFormat.Nf4, 4, QuantSpec.PerChannel));
        using var p = q.ComputeParams(w);
        Close([2f], Floats(p.Scale));
        using var codes = q.Codes(w, p);
        Assert.Equal(torch.ScalarType.Byte, codes.dtype);
        Assert.Equal(new byte[] { 0, 1, 7, 9, 15 }, Bytes(codes));
        using var dq = q.QuantizeDequantize(w, p);
        Close([-2f, 2 * -0.6961928f, 0f, 2 * 0.16093020f, 2f], Floats(dq));
        using var back = q.Dequantize(codes, p);
        Exact(Floats(dq), Floats(back));
    }

    [Fact]
    public void Nf4CodesPackTwoPerByteLowNibbleFirstAndUnpackToTheSameValues()
    {
        // Codes [0, 1, 7, 9, 15, 8] → bytes 0x10, 0x97, 0x8F (column 2j in the low nibble).
        using var w = Matrix(1, -2f, -1.3923856f, 0f, 0.3f, 2f, 0.16f);
        var q = WeightQuantizer.Create(new QuantSpec(QuantFormat.Nf4, 4, QuantSpec.PerChannel));
        using var p = q.ComputeParams(w);
        using var codes = q.Codes(w, p);
        Assert.Equal(new byte[] { 0, 1, 7, 9, 15, 8 }, Bytes(codes));
        using var packed = QuantSharp.Export.BitPacking.PackNibbles(codes);
        Assert.Equal(new byte[] { 0x10, 0x97, 0x8F }, Bytes(packed));
        using var unpacked = QuantSharp.Export.BitPacking.UnpackNibbles(packed);
        using var values = q.Dequantize(unpacked, p);
        using var direct = q.QuantizeDequantize(w, p);
        Exact(Floats(direct), Floats(values));
    }

    [Fact]
    public void MidpointTiesGoToTheLowerLevel()
    {
        // Fp4Bnb with absmax 12 → scale 1. 2.5, 5, 7, 10 and 0.03125 sit exactly on midpoints (2|3, 4|6, 6|8, 8|12,
        // 0|0.0625) and go down; −2.5 (−3|−2) goes down too, to −3: ties round toward −∞, as INC's `x <= mid` does.
        using var w = Matrix(1, 12f, 2.5f, -2.5f, 5f, 7f, 10f, 0.03125f, -12f);
        var q = WeightQuantizer.Create(new QuantSpec(QuantFormat.Fp4Bnb, 4, QuantSpec.PerChannel));
        using var p = q.ComputeParams(w);
        Close([1f], Floats(p.Scale));
        using var dq = q.QuantizeDequantize(w, p);
        Exact([12f, 2f, -3f, 4f, 6f, 8f, 0f, -12f], Floats(dq));
        using var codes = q.Codes(w, p);
        Assert.Equal(new byte[] { 14, 9, 4, 11, 12, 13, 7, 0 }, Bytes(codes));
    }

    [Fact]
    public void IncFp4E2M1RoundsHalfToItsSmallSubnormal()
    {
        // absmax 6 → scale 6; 0.5/6 = 0.0833 is below the 0.0104/0.1667 midpoint 0.0885, so 0.5 becomes 0.0625 (true
        // E2M1 would keep 0.5 exactly).
        using var w = Matrix(1, 6f, -4f, 0.0625f, 0.5f);
        var q = WeightQuantizer.Create(new QuantSpec(QuantFormat.Fp4E2M1Inc, 4, QuantSpec.PerChannel));
        using var p = q.ComputeParams(w);
        using var dq = q.QuantizeDequantize(w, p);
        Close([6f, -4f, 0.0625f, 0.0625f], Floats(dq));
    }

    [Fact]
    public void TableFormatsAreFourBitSymmetricOnly()
    {
        var e = Assert.Throws<QuantSharpException>(() => new QuantSpec(QuantFormat.Nf4, 3, 64).Validate());
        Assert.Contains("--w-bits 3", e.Message);
        Assert.Throws<QuantSharpException>(() => new QuantSpec(QuantFormat.Fp4Bnb, 4, 64, Symmetric: false).Validate());
    }

    [Fact]
    public void OneBitAsymmetricIntWorksAndBitsOutsideOneToEightAreRejected()
    {
        // [−0.5, 1.5]: scale 2/1 = 2, zero round(0.25) = 0; codes round(x/2) = [0, 1] → values [0, 2].
        using var w = Matrix(1, -0.5f, 1.5f);
        var q = WeightQuantizer.Create(QuantSpec.Int(1, QuantSpec.PerChannel, symmetric: false));
        using var p = q.ComputeParams(w);
        Close([2f], Floats(p.Scale));
        using var codes = q.Codes(w, p);
        Assert.Equal(new byte[] { 0, 1 }, Bytes(codes));
        Assert.Contains("--asym", Assert.Throws<QuantSharpException>(() => QuantSpec.Int(1, 64).Validate()).Message);
        Assert.Contains("--w-bits 0", Assert.Throws<QuantSharpException>(() => QuantSpec.Int(0, 64, symmetric: false).Validate()).Message);
        Assert.Contains("--w-bits 9", Assert.Throws<QuantSharpException>(() => QuantSpec.Int(9, 64, symmetric: false).Validate()).Message);
    }

    [Fact]
    public void FullRangeMapsTheLargestMagnitudeOntoTheExtraNegativeLevel()
    {
        // absmax 2 (positive) → scale −2/8 = −0.25: 2 → −8, −1 → 4, 0.5 → −2; all exact.
        using var w = Matrix(2, -1f, 0.5f, 2f, -2f, 0.5f, 1f);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, QuantSpec.PerChannel) with { FullRange = true });
        using var p = q.ComputeParams(w);
        Close([-0.25f, 0.25f], Floats(p.Scale));
        using var codes = q.Codes(w, p);
        Assert.Equal(new sbyte[] { 4, -2, -8, -8, 2, 4 }, SBytes(codes));
        using var dq = q.QuantizeDequantize(w, p);
        Exact([-1f, 0.5f, 2f, -2f, 0.5f, 1f], Floats(dq));
        Assert.Throws<QuantSharpException>(() => (QuantSpec.Int(4, 64, symmetric: false) with { FullRange = true }).Validate());
    }

    [Fact]
    public void IncSymmetricRuleUsesAbsMaxOverSeven()
    {
        // absmax 3 → scale 3/7; x/s = [−3.5, 0.467, 1.633, 7] → round half to even [−4, 0, 2, 7].
        using var w = Matrix(1, -1.5f, 0.2f, 0.7f, 3f);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, QuantSpec.PerChannel) with { SymmetricRule = IntSymmetricRule.Inc });
        using var p = q.ComputeParams(w);
        Close([3f / 7], Floats(p.Scale));
        using var codes = q.Codes(w, p);
        Assert.Equal(new sbyte[] { -4, 0, 2, 7 }, SBytes(codes));
        Assert.Throws<QuantSharpException>(() => (QuantSpec.Int(4, 64, symmetric: false) with { SymmetricRule = IntSymmetricRule.Inc }).Validate());
    }

    [Fact]
    public void ClipSearchPicksTheTensorWideRatioWithTheLowestMse()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(7);
        var w = torch.randn([16, 64], generator: gen);
        w[3, 5] = torch.tensor(9f); // an outlier makes clipping worthwhile
        var spec = QuantSpec.Int(3, 32, symmetric: false);
        var grouped = w.reshape(16, 2, 32);
        var (min, max) = (grouped.amin([-1], keepdim: true), grouped.amax([-1], keepdim: true));
        // Brute force, with IntGrid's rules directly: the first ratio of the lowest whole-tensor MSE.
        int bestI = -1;
        double best = double.PositiveInfinity;
        for (int i = 0; i < 40; i++)
        {
            float r = (float)(1.0 - i / 200.0);
            var s = IntGrid.AsymmetricScale(min.mul(r), max.mul(r), 3);
            var z = IntGrid.AsymmetricZero(min.mul(r), s, 3);
            double mse = grouped.sub(IntGrid.Dequantize(IntGrid.Quantize(grouped, s, z, 3, false), s, z)).pow(2).mean().item<float>();
            if (mse < best) { best = mse; bestI = i; }
        }
        Assert.True(bestI > 0, "the outlier should make a ratio below 1 win");
        float ratio = (float)(1.0 - bestI / 200.0);
        var q = WeightQuantizer.Create(spec with { Observer = ObserverKind.ClipSearch });
        using var p = q.ComputeParams(w);
        Exact(Floats(IntGrid.AsymmetricScale(min.mul(ratio), max.mul(ratio), 3).squeeze(-1)), Floats(p.Scale));
    }

    [Fact]
    public void DoubleQuantKnownAnswer()
    {
        // nf4 per channel: scales = row absmax = [1, 2, 3, 4]. INC's default (asym, 8 bits): mean 2.5 subtracted →
        // [−1.5, −0.5, 0.5, 1.5], second-level scale 1.5/127, codes round(·127/1.5) = [−127, −42, 42, 127].
        using var w = Matrix(4, 1f, 0f, 2f, 0f, 3f, 0.5f, -4f, 1f);
        var q = WeightQuantizer.Create(new QuantSpec(QuantFormat.Nf4, 4, QuantSpec.PerChannel) { DoubleQuant = new DoubleQuantSpec() });
        using var p = q.ComputeParams(w);
        var dq = p.DoubleQuant!;
        Assert.Equal(new sbyte[] { -127, -42, 42, 127 }, SBytes(dq.Codes));
        Close([1.5f / 127], Floats(dq.Scales));
        Close([2.5f], Floats(dq.Mean!));
        float s2 = 1.5f / 127;
        Close([1f, 2.5f - 42 * s2, 2.5f + 42 * s2, 4f], Floats(p.Scale), 1e-6f, 1e-6f);
        using var back = dq.Dequantize();
        Exact(Floats(p.Scale), Floats(back));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DoubleQuantRoundTripIsWithinHalfAnEightBitStep(bool symmetric)
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(3);
        // 40 rows × 25 groups = 1000 scales: three groups of 256 and a tail of 232.
        var w = torch.randn([40, 25 * 16], generator: gen).mul(torch.rand([40, 1], generator: gen).add(0.1));
        var plain = WeightQuantizer.Create(QuantSpec.Int(4, 16, symmetric: false));
        var dqSpec = new DoubleQuantSpec(8, symmetric, 256);
        var doubled = WeightQuantizer.Create(QuantSpec.Int(4, 16, symmetric: false) with { DoubleQuant = dqSpec });
        using var p0 = plain.ComputeParams(w);
        using var p1 = doubled.ComputeParams(w);
        float[] s = Floats(p0.Scale), sq = Floats(p1.Scale);
        float mean = symmetric ? 0 : s.Average();
        for (int k = 0; k < s.Length; k++)
        {
            int g = k / 256;
            float absMax = s.Skip(g * 256).Take(256).Max(v => Math.Abs(v - mean));
            Assert.True(Math.Abs(sq[k] - s[k]) <= absMax / 127 / 2 * 1.0001f + 1e-7f, $"scale {k}: {sq[k]} vs {s[k]}");
        }
        Assert.Equal(4, p1.DoubleQuant!.Scales.shape[0]);
        // The zero points stay the ones of the original scales; the weights are rounded with the dequantized scale.
        Exact(Floats(p0.Zero!), Floats(p1.Zero!));
        using var values = doubled.QuantizeDequantize(w, p1);
        using var codes = doubled.Codes(w, p1);
        Exact(Floats(values), Floats(doubled.Dequantize(codes, p1)));
    }
}
