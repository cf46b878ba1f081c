using TorchSharp;
using QuantSharp.Formats;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Formats;

public class E2M1FormatTests
{
    private static readonly MiniFloatFormat E2M1 = MiniFloatFormat.E2M1;

    [Fact]
    public void RoundsTiesToEvenMantissaAndSaturates()
    {
        float[] input = [0f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f, 7f, -100f, -0.75f, 0.3f, 5.1f, 2.6f, 0.74f, 6f, -3.5f, float.PositiveInfinity];
        float[] expected = [0f, 0f, 1f, 1f, 2f, 2f, 4f, 4f, 6f, -6f, -1f, 0.5f, 6f, 3f, 0.5f, 6f, -4f, 6f];
        using var x = Vector(input);
        using var r = E2M1.Round(x);
        Exact(expected, Floats(r));
    }

    [Fact]
    public void CodesAreSignAndMagnitudeIndex()
    {
        float[] values = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f, 1.8f, -7f, 1.7f];
        byte[] expected = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 4, 15, 3];
        using var x = Vector(values);
        using var codes = E2M1.Encode(x);
        Assert.Equal(expected, Bytes(codes));
    }

    [Fact]
    public void DecodesEveryCode()
    {
        using var codes = torch.arange(16, dtype: torch.ScalarType.Byte);
        using var values = E2M1.Decode(codes);
        float[] expected = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];
        Exact(expected, Floats(values));
        using var again = E2M1.Encode(values);
        Assert.Equal(Bytes(codes), Bytes(again));
    }
}
