using QuantSharp.Formats;
using QuantSharp.Quantizers;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Formats;

/// <summary>NVFP4 and MXFP4 scales on hand-computed tensors, through the weight quantizer.</summary>
public class BlockScaleTests
{
    [Fact]
    public void NvFp4GlobalAndGroupScales()
    {
        // Four groups of 16 in one row; max|W| = 4 → global scale 448·6/4 = 672.
        var row = new float[64];
        float[] g0 = [4f, -2.5f, 1f, 0.3f], g1 = [1f, -0.5f, 0.26f], g2 = [0.3f, 0.1f];
        g0.CopyTo(row, 0); g1.CopyTo(row, 16); g2.CopyTo(row, 32); // group 3 stays all zero
        using var w = Matrix(1, row);
        var q = WeightQuantizer.Create(QuantSpec.NvFp4());
        using var p = q.ComputeParams(w);

        Exact([672f], Floats(p.GlobalScale!));
        // group 0: 4/6·672 = 448 → E4M3 448 (0x7E); group 1: 1/6·672 = 112 = 1.75·2^6 (0x6E);
        // group 2: 0.3/6·672 = 33.6 → E4M3 spacing 4 in [32, 64) → 32 (0x60); group 3: zero → byte 0, effective scale 1.
        Assert.Equal(new byte[] { 0x7E, 0x6E, 0x60, 0x00 }, Bytes(p.ScaleBytes!));
        Close([448f / 672f, 112f / 672f, 32f / 672f, 1f], Floats(p.Scale));

        using var codes = q.Codes(w, p);
        byte[] c = Bytes(codes);
        // group 0 / (2/3): 4 → 6 (code 7), −2.5 → −3.75 → −4 (code 8|6), 1 → 1.5 (3), 0.3 → 0.45 → 0.5 (1)
        Assert.Equal(new byte[] { 7, 14, 3, 1 }, c[..4]);
        // group 1 / (1/6): 1 → 6 (7), −0.5 → −3 (8|5), 0.26 → 1.56 → 1.5 (3)
        Assert.Equal(new byte[] { 7, 13, 3 }, c[16..19]);
        // group 2 / (1/21): 0.3 → 6.3 → saturates at 6 (7), 0.1 → 2.1 → 2 (4)
        Assert.Equal(new byte[] { 7, 4 }, c[32..34]);
        Assert.All(c[48..], b => Assert.True(b is 0 or 8));

        using var dq = q.QuantizeDequantize(w, p);
        float[] d = Floats(dq);
        Close([4f, -4f * 2f / 3f, 1.5f * 2f / 3f, 0.5f * 2f / 3f], d[..4]);
        Close([1f, -0.5f, 0.25f], d[16..19]);
        Close([6f * 32f / 672f, 2f * 32f / 672f], d[32..34]);
        using var fromCodes = q.Dequantize(codes, p);
        Exact(d, Floats(fromCodes));
    }

    [Fact]
    public void NvFp4UsesAGivenGlobalScale()
    {
        using var w = Matrix(1, Enumerable.Range(0, 16).Select(i => i / 4f).ToArray()); // max 3.75
        var q = WeightQuantizer.Create(QuantSpec.NvFp4());
        using var gs = Vector(100f);
        using var p = q.ComputeParams(w, gs);
        Exact([100f], Floats(p.GlobalScale!));
        // 3.75/6·100 = 62.5 → E4M3 spacing 4 in [32, 64): 62.5/4 = 15.6 → 16 → 64 (field 13, mantissa 0)
        Assert.Equal(new byte[] { 0x68 }, Bytes(p.ScaleBytes!));
        Close([0.64f], Floats(p.Scale));
    }

    [Fact]
    public void MxFp4FpQuantRuleKeepsTheMaximumUnclipped()
    {
        var row = new float[64];
        float[] g0 = [5f, -7f, 1f, 0.3f];
        g0.CopyTo(row, 0); // group 1 all zero
        using var w = Matrix(1, row);
        var q = WeightQuantizer.Create(QuantSpec.MxFp4(MxScaleRule.FpQuant));
        using var p = q.ComputeParams(w);
        // floor(log2 7) = 2 → byte 129, scale 2^2/3; zero group: exponent of 2^-126 → byte 1.
        Assert.Equal(new byte[] { 129, 1 }, Bytes(p.ScaleBytes!));
        Exact([3f], Floats(p.GlobalScale!));
        Exact([4f / 3f, MathF.ScaleB(1f, -126) / 3f], Floats(p.Scale));
        using var dq = q.QuantizeDequantize(w, p);
        // 5·3/4 = 3.75 → 4; −7·3/4 = −5.25 → −6 (max lands in [3, 6), not clipped); 1·3/4 = 0.75 → 1; 0.3 → 0.225 → 0
        Close([16f / 3f, -8f, 4f / 3f, 0f], Floats(dq)[..4]);
        using var codes = q.Codes(w, p);
        Assert.Equal(new byte[] { 6, 15, 2, 0 }, Bytes(codes)[..4]);
    }

    [Fact]
    public void MxFp4OcpRuleMayClip()
    {
        var row = new float[32];
        float[] g0 = [5f, -7f, 1f, 0.3f];
        g0.CopyTo(row, 0);
        using var w = Matrix(1, row);
        var q = WeightQuantizer.Create(QuantSpec.MxFp4(MxScaleRule.Ocp));
        using var p = q.ComputeParams(w);
        // 2^(floor(log2 7) − 2) = 1 → byte 127, global 1
        Assert.Equal(new byte[] { 127 }, Bytes(p.ScaleBytes!));
        Exact([1f], Floats(p.GlobalScale!));
        Exact([1f], Floats(p.Scale));
        using var dq = q.QuantizeDequantize(w, p);
        // 5 → 4 (tie to even), −7 → −6 (clipped), 1 → 1, 0.3 → 0.5
        Exact([4f, -6f, 1f, 0.5f], Floats(dq)[..4]);
    }

    [Fact]
    public void MxScaleExponentIsExactJustBelowAPowerOfTwo()
    {
        // absmax just below 2^20: log2 rounds to 20 in float32, but the exponent must be 19.
        float justBelow = MathF.ScaleB(1f, 20) * (1f - MathF.ScaleB(1f, -24)) * 6f;
        using var raw = Matrix(1, justBelow / 6f);
        var (_, bytes) = MxFp4Scales.FromRawScale(raw, MxScaleRule.FpQuant);
        using (bytes)
        {
            int e = Bytes(bytes)[0] - 127;
            float groupMax = Floats(raw)[0] * 6f;
            Assert.True(MathF.ScaleB(1f, e) <= groupMax && groupMax < MathF.ScaleB(1f, e + 1), $"exponent {e} for {groupMax:R}");
        }
    }
}
