using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// One learnable invertible n × n matrix (FlatQuant's "direct inverse" parameterisation), initialised to a seeded
/// random orthogonal matrix (QR of a Gaussian with the signs of diag(R) folded in, as the reference does). Its
/// inverse is always taken in float64: float32 inversion of a drifting matrix is what makes the reference fail with
/// "singular matrix" on some layers.
/// </summary>
public sealed class TransformMatrix : IDisposable
{
    public TransformMatrix(int n, long seed, Device device)
    {
        Value = new Parameter(RandomOrthogonal(n, seed).to(device), requires_grad: true);
    }

    public TransformMatrix(Tensor value)
    {
        Value = new Parameter(value.to(ScalarType.Float32).clone(), requires_grad: true);
    }

    public Parameter Value { get; }
    public int Size => (int)Value.shape[0];

    /// <summary>M⁻ᵀ (float64 inverse, returned as float32, differentiable).</summary>
    public Tensor InverseTranspose()
    {
        using var scope = NewDisposeScope();
        return linalg.inv(Value.to(ScalarType.Float64)).t().to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>M⁻ᵀ of a fixed matrix, float64 inverse, float32 result.</summary>
    public static Tensor InverseTransposeOf(Tensor m)
    {
        using var scope = NewDisposeScope();
        return linalg.inv(m.detach().to(ScalarType.Float64)).t().to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>M⁻ᵀ of a matrix that may require grad (float64 inverse, float32 result).</summary>
    public static Tensor InverseTransposeOfDifferentiable(Tensor m)
    {
        using var scope = NewDisposeScope();
        return linalg.inv(m.to(ScalarType.Float64)).t().to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public static Tensor RandomOrthogonal(int n, long seed)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)seed, CPU);
        Tensor g = randn([n, n], ScalarType.Float64, generator: gen);
        var (q, r) = linalg.qr(g);
        Tensor signs = r.diagonal().sign();
        signs = where(signs.eq(0), ones_like(signs), signs);
        return (q * signs.unsqueeze(0)).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose() => Value.Dispose();
}
