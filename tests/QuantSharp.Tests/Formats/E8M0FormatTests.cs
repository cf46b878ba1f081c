using TorchSharp;
using QuantSharp.Formats;
using static QuantSharp.Tests.Formats.TensorAssert;

namespace QuantSharp.Tests.Formats;

public class E8M0FormatTests
{
    [Fact]
    public void ExponentIsFloorLog2Clamped()
    {
        using var x = Vector(5f, 4f, 3.999f, 0.75f, MathF.ScaleB(1f, -130), MathF.ScaleB(1.5f, 127), 0f, MathF.ScaleB(1f, 20) * (1f - MathF.ScaleB(1f, -24)));
        using var e = E8M0Format.ExponentOf(x);
        Assert.Equal(new long[] { 2, 2, 1, -1, -127, 127, -127, 19 }, e.data<long>().ToArray());
    }

    [Fact]
    public void BytesAreExponentPlus127()
    {
        using var e = torch.tensor(new long[] { 2, 0, -127, 127, 200, -300 });
        using var bytes = E8M0Format.Encode(e);
        Assert.Equal(new byte[] { 129, 127, 0, 254, 254, 0 }, Bytes(bytes));
        using var values = E8M0Format.Decode(torch.tensor(new byte[] { 129, 127, 0, 254, 255 }));
        float[] v = Floats(values);
        Exact([4f, 1f, MathF.ScaleB(1f, -127), MathF.ScaleB(1f, 127)], v[..4]);
        Assert.True(float.IsNaN(v[4]));
    }

    [Fact]
    public void Pow2IsExactAcrossTheFloatRange()
    {
        using var k = torch.tensor(new long[] { -149, -127, -126, -1, 0, 1, 127 });
        using var p = Pow2.Exact(k);
        Exact([MathF.ScaleB(1f, -149), MathF.ScaleB(1f, -127), MathF.ScaleB(1f, -126), 0.5f, 1f, 2f, MathF.ScaleB(1f, 127)], Floats(p));
    }
}
