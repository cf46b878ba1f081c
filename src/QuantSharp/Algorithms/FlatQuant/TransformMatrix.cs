using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>How a learnable transform matrix is parameterised during calibration.</summary>
public enum TransformParameterization
{
    /// <summary>
    /// M = U·diag(σ)·Vᵀ with U, V orthogonal through the Cayley map of a skew-symmetric matrix (FlatQuant's default):
    /// the inverse is U·diag(1/σ)·Vᵀ, exact and cheap, and M cannot drift towards singular.
    /// </summary>
    Svd,
    /// <summary>M itself is the parameter (FlatQuant's --direct_inv); its inverse is solved in float64.</summary>
    DirectInverse,
}

/// <summary>
/// One learnable invertible n × n matrix of FlatQuant. Both parameterisations start from seeded random orthogonal
/// matrices (QR of a Gaussian with the signs of diag(R) folded in, as the reference does). After calibration
/// <see cref="Freeze"/> fixes the matrix (optionally rounded to the precision it will be stored in) and from then on
/// its inverse is taken from the frozen value in float64, so the weights fold the exact inverse of what runs online.
/// </summary>
public sealed class TransformMatrix : IDisposable
{
    private Parameter? _direct;
    private readonly Parameter? _u, _v, _sigma;
    private Tensor? _frozen;
    private bool _caching;
    private Tensor? _cachedU, _cachedV;

    public TransformMatrix(int n, long seed, Device device, TransformParameterization parameterization = TransformParameterization.DirectInverse)
    {
        Size = n;
        Parameterization = parameterization;
        if (parameterization == TransformParameterization.DirectInverse)
        {
            _direct = new Parameter(RandomOrthogonal(n, seed).to(device), requires_grad: true);
        }
        else
        {
            // The reference hands a random orthogonal matrix to PyTorch's Cayley parametrisation without
            // trivialisation; that matrix becomes the raw parameter X, and U = cayley(tril(X) − tril(X)ᵀ).
            _u = new Parameter(RandomOrthogonal(n, seed).to(device), requires_grad: true);
            _v = new Parameter(RandomOrthogonal(n, seed + 104_729).to(device), requires_grad: true);
            _sigma = new Parameter(ones(n, ScalarType.Float32, device), requires_grad: true);
        }
    }

    /// <summary>A fixed-start direct matrix (tests, resume of the direct parameterisation).</summary>
    public TransformMatrix(Tensor value)
    {
        Size = (int)value.shape[0];
        Parameterization = TransformParameterization.DirectInverse;
        _direct = new Parameter(value.to(ScalarType.Float32).clone(), requires_grad: true);
    }

    public int Size { get; }
    public TransformParameterization Parameterization { get; }
    public bool IsFrozen => _frozen is not null;

    /// <summary>The trainable tensors (empty once frozen).</summary>
    public IReadOnlyList<Parameter> Parameters =>
        _frozen is not null ? [] : _direct is not null ? [_direct] : [_u!, _v!, _sigma!];

    /// <summary>The trained tensors by name suffix ("" for the direct matrix; ".u", ".v", ".sigma" for the SVD form).</summary>
    public IEnumerable<(string Suffix, Parameter Value)> Named() =>
        _direct is not null ? [("", _direct)] : [(".u", _u!), (".v", _v!), (".sigma", _sigma!)];

    /// <summary>M, differentiable in the parameters (the frozen value once frozen). Owned by the caller's scope unless direct.</summary>
    public Tensor Matrix()
    {
        if (_frozen is not null) return _frozen;
        if (_direct is not null) return _direct;
        using var scope = NewDisposeScope();
        var (u, v) = Factors();
        return u.mul(_sigma!.unsqueeze(0)).matmul(v.t()).MoveToOuterDisposeScope();
    }

    /// <summary>M⁻ᵀ, differentiable: U·diag(1/σ)·Vᵀ for the SVD form, a float64 inverse otherwise.</summary>
    public Tensor InverseTranspose()
    {
        if (_frozen is null && _direct is null)
        {
            using var scope = NewDisposeScope();
            var (u, v) = Factors();
            return u.div(_sigma!.unsqueeze(0)).matmul(v.t()).MoveToOuterDisposeScope();
        }
        return InverseTransposeOfDifferentiable(_frozen ?? _direct!);
    }

    /// <summary>
    /// Between <see cref="BeginStep"/> and <see cref="EndStep"/> the Cayley factors are computed once and shared by
    /// <see cref="Matrix"/> and <see cref="InverseTranspose"/> (one training forward needs both for every matrix; the
    /// small float64 solves are launch-bound on a GPU). The autograd graph keeps its own references, so the handles can
    /// be released at the end of the forward, before backward runs.
    /// </summary>
    public void BeginStep() => _caching = _u is not null && _frozen is null;

    public void EndStep()
    {
        _caching = false;
        _cachedU?.Dispose(); _cachedU = null;
        _cachedV?.Dispose(); _cachedV = null;
    }

    private (Tensor U, Tensor V) Factors()
    {
        if (!_caching) return (Cayley(_u!), Cayley(_v!));
        _cachedU ??= Cayley(_u!).DetachFromDisposeScope();
        _cachedV ??= Cayley(_v!).DetachFromDisposeScope();
        return (_cachedU, _cachedV);
    }

    /// <summary>
    /// Fixes M to <paramref name="round"/>(M) (e.g. the fp16 value the export stores); later calls of
    /// <see cref="Matrix"/> return it and <see cref="InverseTranspose"/> inverts it exactly (float64).
    /// </summary>
    public void Freeze(Func<Tensor, Tensor> round)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        Tensor m = Matrix().detach();
        Tensor fixedValue = round(m).to(ScalarType.Float32).clone().DetachFromDisposeScope();
        _frozen?.Dispose();
        _frozen = fixedValue;
    }

    /// <summary>Q = (I − A/2)⁻¹(I + A/2) with A = tril(X) − tril(X)ᵀ (PyTorch's "cayley" orthogonal map), solved in float64.</summary>
    public static Tensor Cayley(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor t = x.to(ScalarType.Float64).tril();
        Tensor a = t - t.t();
        Tensor id = eye(x.shape[0], dtype: ScalarType.Float64, device: x.device);
        return linalg.solve(id - a * 0.5, id + a * 0.5).to(ScalarType.Float32).MoveToOuterDisposeScope();
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

    public void Dispose()
    {
        EndStep();
        _direct?.Dispose();
        _u?.Dispose();
        _v?.Dispose();
        _sigma?.Dispose();
        _frozen?.Dispose();
    }
}
