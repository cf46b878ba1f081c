using QuantSharp.Export.Gguf.Blocks;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Tests.Export.Gguf;

/// <summary>dequantize(quantize(x)) on Gaussian rows: error bounds per type, and the importance matrix's effect.</summary>
public sealed class GgmlRoundTripTests
{
    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()) * 0.02);
        return x;
    }

    private static float[] RoundTrip(GgmlType type, float[] x, int rowLength, float[]? importance = null)
    {
        var codec = GgmlBlockCodecs.For(type);
        byte[] blocks = GgmlBlockCodecs.QuantizeRows(codec, x, rowLength, importance);
        Assert.Equal(GgmlTypeSizes.RowBytes(type, rowLength) * (x.Length / rowLength), blocks.Length);
        return GgmlBlockCodecs.DequantizeRows(codec, blocks, x.Length, rowLength);
    }

    private static double RelativeRmse(float[] x, float[] y, float[]? columnWeights = null, int rowLength = 1)
    {
        double num = 0, den = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double w = columnWeights is null ? 1 : columnWeights[i % rowLength];
            num += w * (x[i] - y[i]) * (x[i] - y[i]);
            den += w * x[i] * x[i];
        }
        return Math.Sqrt(num / den);
    }

    [Theory]
    // Bounds well above the measured error (4-bit Gaussian ≈ 0.09–0.12, 8-bit ≈ 0.004) but far below a packing bug.
    [InlineData(GgmlType.F16, 0.001)]
    [InlineData(GgmlType.BF16, 0.005)]
    [InlineData(GgmlType.Q8_0, 0.01)]
    [InlineData(GgmlType.Q5_0, 0.08)]
    [InlineData(GgmlType.Q4_0, 0.16)]
    [InlineData(GgmlType.Q4_1, 0.14)]
    [InlineData(GgmlType.Q4_K, 0.13)]
    [InlineData(GgmlType.IQ4_NL, 0.13)]
    [InlineData(GgmlType.MXFP4, 0.2)]
    public void GaussianRows_RoundTripWithinBound(GgmlType type, double bound)
    {
        float[] x = Gaussian(8 * 512, 7);
        double err = RelativeRmse(x, RoundTrip(type, x, 512));
        Assert.True(err < bound, $"{type}: relative RMSE {err:F4} ≥ {bound}");
        Assert.True(err > 0 || type is GgmlType.F16, $"{type}: lossless on Gaussian data is suspicious");
    }

    [Fact]
    public void Q8_0_ErrorIsAtMostHalfAStep_PlusTheFp16ScaleRounding()
    {
        float[] x = Gaussian(4 * 256, 3);
        float[] y = RoundTrip(GgmlType.Q8_0, x, 256);
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[32 * b + j]));
            float step = amax / 127;
            // Levels are rounded against the exact step, then decoded with the fp16-stored step (relative error
            // ≤ 2^-11), which can add up to 127 · step · 2^-11 at the largest level.
            float bound = step * (0.5f + 127f / 2048f) * 1.001f;
            for (int j = 0; j < 32; j++)
                Assert.True(MathF.Abs(x[32 * b + j] - y[32 * b + j]) <= bound, $"value {32 * b + j}");
        }
    }

    [Fact]
    public void Q4_K_RowsThatAreZero_StayZero()
    {
        var x = new float[512];
        Assert.All(RoundTrip(GgmlType.Q4_K, x, 512), v => Assert.Equal(0f, v));
        Assert.All(RoundTrip(GgmlType.IQ4_NL, x, 512), v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_1)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.IQ4_NL)]
    public void ImportanceMatrix_LowersErrorWhereActivationsAreLarge(GgmlType type)
    {
        const int rowLength = 256;
        float[] x = Gaussian(16 * rowLength, 11);
        // A few columns carry most of the activation energy, as in real imatrix data.
        var importance = new float[rowLength];
        var rng = new Random(5);
        for (int j = 0; j < rowLength; j++) importance[j] = rng.Next(10) == 0 ? 100f : 0.1f;
        double plain = RelativeRmse(x, RoundTrip(type, x, rowLength), importance, rowLength);
        double weighted = RelativeRmse(x, RoundTrip(type, x, rowLength, importance), importance, rowLength);
        Assert.True(weighted < plain * 0.9, $"{type}: importance-weighted error {weighted:F4} vs {plain:F4} without");
    }
}
