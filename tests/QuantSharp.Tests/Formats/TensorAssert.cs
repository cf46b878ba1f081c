using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Formats;

/// <summary>Small helpers to move test vectors in and out of tensors.</summary>
internal static class TensorAssert
{
    public static Tensor Vector(params float[] values) => tensor(values, dtype: ScalarType.Float32);

    public static Tensor Matrix(int rows, params float[] values) => tensor(values, dtype: ScalarType.Float32).reshape(rows, -1);

    public static float[] Floats(Tensor t) => t.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    public static byte[] Bytes(Tensor t) => t.cpu().contiguous().data<byte>().ToArray();

    public static sbyte[] SBytes(Tensor t) => t.cpu().contiguous().data<sbyte>().ToArray();

    /// <summary>Exact (bitwise for non-NaN, sign of zero ignored) equality of float sequences.</summary>
    public static void Exact(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i], $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    public static void Close(float[] expected, float[] actual, float relTol = 1e-6f, float absTol = 1e-7f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= absTol + relTol * MathF.Abs(expected[i]),
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }
}
