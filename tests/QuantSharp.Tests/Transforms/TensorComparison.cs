using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Transforms;

/// <summary>Error measures for comparing tensors in tests, computed in float64.</summary>
internal static class TensorComparison
{
    /// <summary>‖actual − expected‖_F / ‖expected‖_F.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        Tensor a = actual.to_type(ScalarType.Float64);
        Tensor e = expected.to_type(ScalarType.Float64);
        double difference = a.sub(e).square().sum().sqrt().item<double>();
        double reference = e.square().sum().sqrt().item<double>();
        return difference / reference;
    }

    public static double MaxAbsDifference(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        return actual.to_type(ScalarType.Float64).sub(expected.to_type(ScalarType.Float64)).abs().max().item<double>();
    }

    /// <summary>Same shape and exactly the same values.</summary>
    public static bool Identical(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && MaxAbsDifference(a, b) == 0;

    /// <summary>max |M·Mᵀ − I|, the distance of a square matrix from orthogonality.</summary>
    public static double OrthogonalityError(Tensor matrix)
    {
        using var scope = NewDisposeScope();
        Tensor gram = matrix.matmul(matrix.t());
        return MaxAbsDifference(gram, eye(matrix.shape[0], dtype: gram.dtype));
    }

    /// <summary>Reads a 2-D tensor into a host array (tests only, small matrices).</summary>
    public static double[,] ToArray(Tensor matrix)
    {
        using var scope = NewDisposeScope();
        Tensor cpu = matrix.to_type(ScalarType.Float64).cpu().contiguous();
        double[] flat = cpu.data<double>().ToArray();
        int rows = (int)cpu.shape[0], cols = (int)cpu.shape[1];
        var result = new double[rows, cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                result[i, j] = flat[i * cols + j];
        return result;
    }
}
