using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Transforms;

/// <summary>
/// A block-diagonal rotation of the last (input) dimension of a linear layer, FP-Quant style.
/// <para>
/// Convention (row vectors, as in PyTorch's <c>F.linear</c> and FP-Quant's <c>x @ matrix</c>): with M the
/// [n, n] block-diagonal matrix <see cref="DenseMatrix"/>, activations become x' = x·M and weights become
/// W' = W·M⁻ᵀ, so x'·W'ᵀ = x·M·M⁻¹·Wᵀ = x·Wᵀ. Each diagonal block of M is <see cref="ForwardBlock"/> (full
/// blocks) or a block of <see cref="ForwardTail"/>; the weight side uses <see cref="BackwardBlock"/> = block⁻ᵀ,
/// which is the block itself for every orthogonal kind. Column k of a block is its k-th basis vector.
/// </para>
/// <para>
/// FP-Quant exports one [g, g] matrix twice, as <c>forward_hadamard_matrix</c> and <c>backward_hadamard_matrix</c>,
/// and its kernels multiply each activation group on the right by it. For the orthogonal kinds that is exactly
/// <see cref="ForwardBlock"/> = <see cref="BackwardBlock"/>; FP-Quant has no export for fast_food.
/// </para>
/// <para>
/// Layout when g does not divide n: see <see cref="TransformBlockLayout"/>. Instances are immutable and own their
/// tensors (outside every dispose scope); dispose them when done.
/// </para>
/// </summary>
public sealed class BlockTransform : IDisposable
{
    private readonly Tensor _forwardBlock;
    private readonly Tensor _backwardBlock;
    private readonly Tensor? _forwardTail;
    private readonly Tensor? _backwardTail;
    private bool _disposed;

    // A null backward block or tail means "the same as forward" (orthogonal kinds): one tensor, held once.
    private BlockTransform(BlockTransformShape shape, Tensor forwardBlock, Tensor? backwardBlock, Tensor? forwardTail, Tensor? backwardTail)
    {
        Shape = shape;
        _forwardBlock = forwardBlock;
        _backwardBlock = backwardBlock ?? forwardBlock;
        _forwardTail = forwardTail;
        _backwardTail = backwardTail ?? forwardTail;
    }

    private BlockTransformShape Shape { get; }

    public TransformKind Kind => Shape.Kind;
    /// <summary>n, the size of the dimension transformed.</summary>
    public int Dimension => Shape.Dimension;
    /// <summary>g, the size of the full blocks.</summary>
    public int GroupSize => Shape.GroupSize;
    public long Seed => Shape.Seed;
    /// <summary>Whether Hadamard blocks carry random ±1 input signs (FP-Quant's random Hadamard).</summary>
    public bool RandomSigns => Shape.RandomSigns;
    /// <summary>False only for fast_food, whose weights need the inverse-transpose.</summary>
    public bool IsOrthogonal => Kind != TransformKind.FastFood;
    /// <summary>⌊n/g⌋, the number of full blocks.</summary>
    public int BlockCount => Dimension / GroupSize;
    /// <summary>n mod g, the columns after the last full block.</summary>
    public int TailSize => Dimension % GroupSize;
    /// <summary>Sizes of the tail's own blocks, in column order (empty when g divides n).</summary>
    public IReadOnlyList<int> TailSegments => Shape.TailSegments;

    /// <summary>The [g, g] block that right-multiplies each full group of activations.</summary>
    public Tensor ForwardBlock => Alive(_forwardBlock);
    /// <summary>The [g, g] block that right-multiplies each full group of a weight row: ForwardBlock⁻ᵀ.</summary>
    public Tensor BackwardBlock => Alive(_backwardBlock);
    /// <summary>The block-diagonal [t, t] matrix for the tail (t = <see cref="TailSize"/>), or null when t = 0.</summary>
    public Tensor? ForwardTail => _forwardTail is null ? null : Alive(_forwardTail);
    /// <summary>ForwardTail⁻ᵀ, or null when there is no tail.</summary>
    public Tensor? BackwardTail => _backwardTail is null ? null : Alive(_backwardTail);

    public Device Device => ForwardBlock.device;
    public ScalarType DType => ForwardBlock.dtype;

    /// <summary>
    /// Builds the transform of kind <paramref name="kind"/> for a dimension of <paramref name="dimension"/> with
    /// blocks of <paramref name="groupSize"/>. Blocks are computed in float64 on the CPU, then stored in
    /// <paramref name="dtype"/> on <paramref name="device"/> (CPU when null). <paramref name="seed"/> drives the
    /// random parts (fast_food, random signs); the same seed gives the same blocks on every device.
    /// </summary>
    /// <exception cref="QuantSharpException">The group size is not positive, exceeds the dimension, or is not a
    /// Hadamard order for hadamard/gsr/fast_food; or random signs were asked of a kind other than hadamard.</exception>
    public static BlockTransform Create(TransformKind kind, int dimension, int groupSize, long seed = 0,
        Device? device = null, ScalarType dtype = ScalarType.Float32, bool randomSigns = false)
    {
        BlockTransformShape shape = BlockTransformShape.Validate(kind, dimension, groupSize, seed, randomSigns);
        if (!is_floating_point(dtype)) throw new ArgumentException($"block matrices need a floating-point dtype, not {dtype}", nameof(dtype));
        device ??= CPU;

        using var scope = NewDisposeScope();
        // One CPU generator for every random draw: blocks do not depend on the target device.
        using var generator = new Generator(unchecked((ulong)seed), CPU);
        (Tensor forward, Tensor backward) = BlockMatrixFactory.Build(kind, groupSize, randomSigns, generator);
        (Tensor? forwardTail, Tensor? backwardTail) = BuildTail(shape, generator);
        bool orthogonal = kind != TransformKind.FastFood;

        return new BlockTransform(shape,
            Keep(forward, device, dtype),
            orthogonal ? null : Keep(backward, device, dtype),
            forwardTail is null ? null : Keep(forwardTail, device, dtype),
            orthogonal || backwardTail is null ? null : Keep(backwardTail, device, dtype));
    }

    /// <summary>
    /// A transform from a stored [g, g] block (e.g. a checkpoint's forward_hadamard_matrix) repeated over a dimension
    /// that g divides. The block is taken as orthogonal (backward = forward), which is what FP-Quant's exports assume.
    /// </summary>
    public static BlockTransform FromForwardBlock(TransformKind kind, int dimension, Tensor block, Device? device = null, ScalarType? dtype = null)
    {
        if (block.dim() != 2 || block.shape[0] != block.shape[1])
            throw new QuantSharpException($"a transform block must be square, got [{string.Join(", ", block.shape)}].");
        int g = checked((int)block.shape[0]);
        if (g <= 0 || dimension % g != 0)
            throw new QuantSharpException($"a transform block of size {g} does not divide the dimension {dimension} it transforms.");
        if (kind == TransformKind.FastFood) throw new QuantSharpException("fast_food blocks are not orthogonal; a stored block cannot stand for them.");
        var shape = new BlockTransformShape(kind, dimension, g, 0, false, []);
        return new BlockTransform(shape, Keep(block, device ?? block.device, dtype ?? block.dtype), null, null, null);
    }

    /// <summary>x' = x·M on the last dimension of <paramref name="x"/> ([..., n]), computed in x's dtype and on x's device.</summary>
    public Tensor ApplyToActivations(Tensor x)
    {
        CheckInput(x, "activations");
        if (Kind == TransformKind.Identity) return x.alias(); // a new handle to the same storage, nothing to compute
        if (!Backend.Devices.Same(x.device, _forwardBlock.device)) return On(x.device).ApplyToActivations(x);
        return BlockDiagonalProduct.Multiply(x, _forwardBlock, _forwardTail);
    }

    private BlockTransform? _otherDevice;

    /// <summary>
    /// This transform's copy on <paramref name="device"/> (cached, owned by this instance): a layer streamed between
    /// devices (--cpu-offload-modules) keeps its transforms where they were made while its tensors move.
    /// </summary>
    private BlockTransform On(Device device)
    {
        if (_otherDevice is null || !Backend.Devices.Same(_otherDevice.Device, device))
        {
            _otherDevice?.Dispose();
            _otherDevice = To(device, DType);
        }
        return _otherDevice;
    }

    /// <summary>
    /// W' = W·M⁻ᵀ for a weight [out, n] whose input dimension is n, so that ApplyToActivations(x)·W'ᵀ = x·Wᵀ.
    /// Half-precision weights are folded in float32 and rounded once at the end, because the block entries (e.g.
    /// 2^-3.5 for g = 128) are not representable in bf16 and rounding them would skew every weight the same way.
    /// </summary>
    public Tensor FoldIntoWeight(Tensor w) => Backend.Devices.Same(w.device, Device)
        ? MultiplyWeight(w, "fold", _backwardBlock, _backwardTail)
        : On(w.device).FoldIntoWeight(w);

    /// <summary>
    /// Undoes <see cref="FoldIntoWeight"/> on a (possibly quantized) folded weight: W = W'·Mᵀ, so that
    /// x·Wᵀ = ApplyToActivations(x)·W'ᵀ exactly. Lets a weight-only model with rotations be exported as a plain
    /// checkpoint with no online transform. Computed in float32 for half-precision inputs, rounded once.
    /// </summary>
    public Tensor UnfoldFromWeight(Tensor folded)
    {
        if (!Backend.Devices.Same(folded.device, Device)) return On(folded.device).UnfoldFromWeight(folded);
        using var scope = NewDisposeScope();
        return MultiplyWeight(folded, "unfold", _forwardBlock.t(), _forwardTail?.t()).MoveToOuterDisposeScope();
    }

    /// <summary>W·diag(block, …, tail) for a weight [out, n], in float32 for half-precision weights, rounded once.</summary>
    private Tensor MultiplyWeight(Tensor w, string what, Tensor block, Tensor? tail)
    {
        CheckInput(w, "weight");
        if (w.dim() != 2) throw new QuantSharpException($"weight to {what} has shape [{string.Join(", ", w.shape)}]; expected [out, {Dimension}].");
        if (Kind == TransformKind.Identity) return w.alias();
        using var scope = NewDisposeScope();
        ScalarType computeType = w.dtype is ScalarType.Float64 or ScalarType.Float32 ? w.dtype : ScalarType.Float32;
        Tensor product = BlockDiagonalProduct.Multiply(w.to_type(computeType), block, tail);
        return product.to_type(w.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The dense [n, n] block-diagonal M (x' = x·M). O(n²) memory: meant for tests and small exports.</summary>
    public Tensor DenseMatrix()
    {
        using var scope = NewDisposeScope();
        var blocks = new List<Tensor>(BlockCount + 1);
        for (int i = 0; i < BlockCount; i++) blocks.Add(ForwardBlock);
        if (ForwardTail is not null) blocks.Add(ForwardTail);
        return block_diag(blocks.ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>A copy of this transform with its blocks on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public BlockTransform To(Device device, ScalarType dtype)
    {
        if (!is_floating_point(dtype)) throw new ArgumentException($"block matrices need a floating-point dtype, not {dtype}", nameof(dtype));
        Tensor? forwardTail = ForwardTail;
        return new BlockTransform(Shape,
            Keep(ForwardBlock, device, dtype),
            IsOrthogonal ? null : Keep(BackwardBlock, device, dtype),
            forwardTail is null ? null : Keep(forwardTail, device, dtype),
            IsOrthogonal || BackwardTail is null ? null : Keep(BackwardTail, device, dtype));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _otherDevice?.Dispose();
        _forwardBlock.Dispose();
        if (!ReferenceEquals(_backwardBlock, _forwardBlock)) _backwardBlock.Dispose();
        _forwardTail?.Dispose();
        if (_backwardTail is not null && !ReferenceEquals(_backwardTail, _forwardTail)) _backwardTail.Dispose();
    }

    /// <summary>Builds the tail's segments (see <see cref="TransformBlockLayout"/>) as one block-diagonal pair.</summary>
    private static (Tensor? Forward, Tensor? Backward) BuildTail(BlockTransformShape shape, Generator generator)
    {
        if (shape.TailSegments.Count == 0) return (null, null);
        var forwards = new List<Tensor>();
        var backwards = new List<Tensor>();
        foreach (int size in shape.TailSegments)
        {
            (Tensor forward, Tensor backward) = BlockMatrixFactory.Build(shape.Kind, size, shape.RandomSigns, generator);
            forwards.Add(forward);
            backwards.Add(backward);
        }
        return (block_diag(forwards.ToArray()), block_diag(backwards.ToArray()));
    }

    /// <summary>A contiguous copy on the target device and dtype that no dispose scope will free.</summary>
    private static Tensor Keep(Tensor source, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        return source.to(dtype, device, copy: true).contiguous().DetachFromDisposeScope();
    }

    private void CheckInput(Tensor t, string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (t.dim() < 1 || t.shape[^1] != Dimension)
            throw new QuantSharpException($"{Kind.Name()} transform of dimension {Dimension} applied to {what} of shape [{string.Join(", ", t.shape)}]; the last dimension must be {Dimension}.");
        if (!t.is_floating_point())
            throw new QuantSharpException($"{Kind.Name()} transform applied to {what} of dtype {t.dtype}; expected a floating-point tensor.");
    }

    private Tensor Alive(Tensor t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return t;
    }
}
