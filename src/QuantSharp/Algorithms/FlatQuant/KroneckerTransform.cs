using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// A learnable transform of one linear input of width n = n1·n2: x → (x ⊙ s)·(L ⊗ R), with weights W → (W ⊘ s)·(L ⊗
/// R)⁻ᵀ = (W ⊘ s)·(L⁻ᵀ ⊗ R⁻ᵀ), so the product with the weight is unchanged. s is the optional per-channel add_diag
/// smoothing; after calibration it is folded into whatever produces x (an RMSNorm, or up_proj for down_proj's input).
/// </summary>
public sealed class KroneckerTransform : IDisposable
{
    public KroneckerTransform(int n, bool addDiag, long seed, Device device,
        TransformParameterization parameterization = TransformParameterization.DirectInverse)
    {
        var (n1, n2) = Kronecker.Factors(n);
        Width = n;
        Left = new TransformMatrix(n1, seed, device, parameterization);
        Right = new TransformMatrix(n2, seed + 7919, device, parameterization);
        if (addDiag) Diag = new Parameter(ones(n, ScalarType.Float32, device), requires_grad: true);
    }

    public int Width { get; }
    public TransformMatrix Left { get; }
    public TransformMatrix Right { get; }
    public Parameter? Diag { get; }

    public IEnumerable<Parameter> MatrixParameters() => Left.Parameters.Concat(Right.Parameters);

    /// <summary>Activations: (x ⊙ s)·(L ⊗ R).</summary>
    public Tensor Apply(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor y = Diag is null ? x : x * Diag;
        return Kronecker.Apply(y, Left.Matrix(), Right.Matrix()).MoveToOuterDisposeScope();
    }

    /// <summary>Weights [out, n]: (W ⊘ s)·(L⁻ᵀ ⊗ R⁻ᵀ), differentiable in L, R and s.</summary>
    public Tensor FoldIntoWeight(Tensor w)
    {
        using var scope = NewDisposeScope();
        Tensor y = Diag is null ? w : w / Diag;
        return Kronecker.Apply(y, Left.InverseTranspose(), Right.InverseTranspose()).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Left.Dispose();
        Right.Dispose();
        Diag?.Dispose();
    }
}
