using TorchSharp;
using QuantSharp.Formats;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Formats;

public class E4M3FormatTests
{
    private static readonly MiniFloatFormat Ocp = MiniFloatFormat.E4M3;
    private static readonly MiniFloatFormat Gaudi = MiniFloatFormat.E4M3Gaudi;
    private static float S(float k) => k * MathF.ScaleB(1f, -9);  // multiples of the smallest OCP subnormal

    [Fact]
    public void RoundsSubnormalsToNearestEven()
    {
        float[] input = [S(1), S(1.5f), S(2.5f), S(0.5f), S(0.6f), S(3.3f), S(6.5f), S(7.5f), S(0.25f), -S(1.5f), S(7.4f)];
        // 0.5 and 2.5 and 6.5 ties go to even (0, 2, 6); 1.5 → 2; 7.5 → 8 = 2^-6, the smallest normal.
        float[] expected = [S(1), S(2), S(2), 0f, S(1), S(3), S(6), S(8), 0f, -S(2), S(7)];
        using var x = Vector(input);
        using var r = Ocp.Round(x);
        Exact(expected, Floats(r));
    }

    [Fact]
    public void RoundsNormalsToNearestEvenAndSaturatesAt448()
    {
        // Spacing is 2 in [16, 32): 17 is a tie between 16 (even mantissa) and 18; 19 between 18 and 20 (even).
        float[] input = [17f, 19f, 1.0625f, 1.1875f, 0.3f, 448f, 464f, 470f, 1e6f, -1e6f, 240f, 33.6f, float.PositiveInfinity, -0f];
        float[] expected = [16f, 20f, 1f, 1.25f, 0.3125f, 448f, 448f, 448f, 448f, -448f, 240f, 32f, 448f, 0f];
        using var x = Vector(input);
        using var r = Ocp.Round(x);
        Exact(expected, Floats(r));
    }

    [Fact]
    public void EncodesKnownBytes()
    {
        float[] input = [448f, -448f, S(1), MathF.ScaleB(1f, -6), 1f, 112f, 32f, 0f, -0f, 0.0625f];
        byte[] expected = [0x7E, 0xFE, 0x01, 0x08, 0x38, 0x6E, 0x60, 0x00, 0x80, 0x18];
        using var x = Vector(input);
        using var codes = Ocp.Encode(x);
        Assert.Equal(expected, Bytes(codes));
    }

    [Fact]
    public void AllFiniteOcpCodesRoundTrip()
    {
        using var all = torch.arange(256, dtype: torch.ScalarType.Byte);
        using var values = Ocp.Decode(all);
        float[] decoded = Floats(values);
        Assert.True(float.IsNaN(decoded[0x7F]) && float.IsNaN(decoded[0xFF]));
        byte[] finiteCodes = Enumerable.Range(0, 256).Where(c => !float.IsNaN(decoded[c])).Select(c => (byte)c).ToArray();
        Assert.Equal(254, finiteCodes.Length);
        using var codes = torch.tensor(finiteCodes);
        using var finiteValues = Ocp.Decode(codes);
        using var rounded = Ocp.Round(finiteValues);
        Exact(Floats(finiteValues), Floats(rounded));
        using var reencoded = Ocp.Encode(finiteValues);
        Assert.Equal(finiteCodes, Bytes(reencoded));
        Assert.Equal(448f, decoded[0x7E]);
        Assert.Equal(MathF.ScaleB(1f, -9), decoded[0x01]);
    }

    [Fact]
    public void GaudiVariantIsFiniteOnlyWithMax240()
    {
        Assert.Equal(240f, Gaudi.MaxFinite);
        Assert.Equal(MathF.ScaleB(1f, -10), Gaudi.SmallestSubnormal);
        using var x = Vector(1000f, -300f, 240f, 232f, 1f, -0f, MathF.ScaleB(1.5f, -10)); // 232 is a tie between 224 and 240
        using var r = Gaudi.Round(x);
        Exact([240f, -240f, 240f, 224f, 1f, 0f, MathF.ScaleB(2f, -10)], Floats(r));
        using var codes = Gaudi.Encode(x);
        // 240 = 1.875·2^7 is exponent field 15 (bias 8), mantissa 7; negative zero must not use 0x80 (its NaN).
        Assert.Equal(new byte[] { 0x7F, 0xFF, 0x7F, 0x7E, 0x40, 0x00, 0x02 }, Bytes(codes));

        using var all = torch.arange(256, dtype: torch.ScalarType.Byte);
        float[] decoded = Floats(Gaudi.Decode(all));
        byte[] finiteCodes = Enumerable.Range(0, 256).Where(c => !float.IsNaN(decoded[c])).Select(c => (byte)c).ToArray();
        Assert.Equal(255, finiteCodes.Length);
        Assert.True(float.IsNaN(decoded[0x80]));
        using var codesTensor = torch.tensor(finiteCodes);
        using var reencoded = Gaudi.Encode(Gaudi.Decode(codesTensor));
        Assert.Equal(finiteCodes, Bytes(reencoded));
    }

    [Fact]
    public void VariantLookup()
    {
        Assert.Same(Ocp, MiniFloatFormat.E4M3Of(E4M3Variant.Ocp));
        Assert.Same(Gaudi, MiniFloatFormat.E4M3Of(E4M3Variant.Gaudi));
    }
}
