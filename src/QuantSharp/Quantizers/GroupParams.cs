using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Quantization parameters of one tensor (or of a run of whole groups of it): everything fake-quantization, packing
/// and export need. Shapes are [rows, groups], or [1, 1] for per-tensor quantization; a group covers
/// <see cref="GroupSize"/> consecutive input columns (the whole row for per-channel and per-tensor).
/// Owns its tensors.
/// </summary>
public sealed class GroupParams : IDisposable
{
    public GroupParams(Tensor scale, Tensor? zero, Tensor? scaleBytes, Tensor? globalScale, int groupSize, int columns)
    {
        if (scale.dim() != 2) throw new ArgumentException($"scale must be [rows, groups], got [{string.Join(", ", scale.shape)}]", nameof(scale));
        if (groupSize <= 0 || columns % groupSize != 0 || scale.shape[1] != columns / groupSize)
            throw new ArgumentException($"{columns} columns in groups of {groupSize} do not match scale [{string.Join(", ", scale.shape)}]");
        Scale = scale;
        Zero = zero;
        ScaleBytes = scaleBytes;
        GlobalScale = globalScale;
        GroupSize = groupSize;
        Columns = columns;
    }

    /// <summary>Effective float32 scale: dequantized value = grid value · Scale (INT: (q − Zero) · Scale).</summary>
    public Tensor Scale { get; private set; }

    /// <summary>
    /// When the scales were double-quantized: their codes and second-level scales (what a packed format stores).
    /// <see cref="Scale"/> is then the dequantized value of these, so everything else uses it unchanged.
    /// </summary>
    public DoubleQuantParams? DoubleQuant { get; private set; }

    /// <summary>Replaces <see cref="Scale"/> by the dequantized double-quantized scales (takes ownership of <paramref name="dq"/>).</summary>
    internal void SetDoubleQuantized(DoubleQuantParams dq)
    {
        Tensor dequantized = dq.Dequantize();
        // Keep the scale non-zero, as every scale rule does: a zero scale would divide by zero when rounding.
        Tensor safe = torch.where(dequantized.eq(0), Scale, dequantized).to(Scale.device);
        dequantized.Dispose();
        Scale.Dispose();
        Scale = safe;
        DoubleQuant?.Dispose();
        DoubleQuant = dq;
    }

    /// <summary>
    /// Asymmetric INT zero points (float32 holding integers in [0, 2^b − 1]); null when symmetric. HQQ's optimised zero
    /// points are not integers (<see cref="HasFractionalZero"/>).
    /// </summary>
    public Tensor? Zero { get; }

    /// <summary>Raw scale bytes (uint8): E4M3 of scale·global for NVFP4, E8M0 of scale·global for MXFP4; else null.</summary>
    public Tensor? ScaleBytes { get; }

    /// <summary>
    /// Per-tensor float32 [1] global scale: NVFP4's 448·6/max|W| (or the value passed in), MXFP4's rule constant
    /// (3 or 1); the stored scale is decode(ScaleBytes) and the effective one decode(ScaleBytes)/GlobalScale.
    /// </summary>
    public Tensor? GlobalScale { get; }

    /// <summary>True when <see cref="Zero"/> holds non-integer values (HQQ), which integer-zero packed formats cannot store.</summary>
    public bool HasFractionalZero
    {
        get
        {
            if (Zero is null) return false;
            using var scope = NewDisposeScope();
            return !Zero.eq(Zero.round()).all().item<bool>();
        }
    }

    /// <summary>Consecutive input columns sharing one scale.</summary>
    public int GroupSize { get; }

    /// <summary>Input columns covered.</summary>
    public int Columns { get; }

    /// <summary>Rows of the parameter tensors (1 for per-tensor).</summary>
    public long Rows => Scale.shape[0];

    public int Groups => Columns / GroupSize;

    public int GroupOfColumn(int column) => column / GroupSize;

    /// <summary>
    /// Joins parameters of consecutive runs of groups (e.g. computed group by group inside GPTQ). Double-quantization
    /// codes are not joined (each part quantized its own scales); the joined scales are their dequantized values.
    /// </summary>
    public static GroupParams ConcatGroups(IReadOnlyList<GroupParams> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("no parts", nameof(parts));
        int groupSize = parts[0].GroupSize;
        if (parts.Any(p => p.GroupSize != groupSize || p.Rows != parts[0].Rows))
            throw new ArgumentException("parts differ in group size or rows", nameof(parts));
        using var scope = NewDisposeScope();
        Tensor scale = cat(parts.Select(p => p.Scale).ToArray(), 1);
        Tensor? zero = parts[0].Zero is null ? null : cat(parts.Select(p => p.Zero!).ToArray(), 1);
        Tensor? bytes = parts[0].ScaleBytes is null ? null : cat(parts.Select(p => p.ScaleBytes!).ToArray(), 1);
        Tensor? global = parts[0].GlobalScale?.clone();
        return new GroupParams(scale, zero, bytes, global, groupSize, parts.Sum(p => p.Columns)).MoveToOuterDisposeScope();
    }

    /// <summary>A copy on <paramref name="device"/> (outside every dispose scope); this instance is left as it is.</summary>
    public GroupParams To(Device device) => new(
        Scale.to(device).DetachFromDisposeScope(), Zero?.to(device).DetachFromDisposeScope(),
        ScaleBytes?.to(device).DetachFromDisposeScope(), GlobalScale?.to(device).DetachFromDisposeScope(), GroupSize, Columns)
    {
        DoubleQuant = DoubleQuant?.To(device),
    };

    /// <summary>Moves every owned tensor to the dispose scope outside the current one (for returning from a scope).</summary>
    public GroupParams MoveToOuterDisposeScope()
    {
        Scale.MoveToOuterDisposeScope();
        Zero?.MoveToOuterDisposeScope();
        ScaleBytes?.MoveToOuterDisposeScope();
        GlobalScale?.MoveToOuterDisposeScope();
        DoubleQuant?.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Takes every owned tensor out of dispose scopes; the caller then disposes this object explicitly.</summary>
    public GroupParams DetachFromDisposeScope()
    {
        Scale.DetachFromDisposeScope();
        Zero?.DetachFromDisposeScope();
        ScaleBytes?.DetachFromDisposeScope();
        GlobalScale?.DetachFromDisposeScope();
        DoubleQuant?.DetachFromDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Scale.Dispose();
        Zero?.Dispose();
        ScaleBytes?.Dispose();
        GlobalScale?.Dispose();
        DoubleQuant?.Dispose();
    }
}
