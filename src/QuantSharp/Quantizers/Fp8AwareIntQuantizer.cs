using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// INT quantization whose dequantized values are FP8 values (<see cref="Fp8AwareScaling"/>; INC's DPQ). The parameters
/// are the integer quantizer's, computed on W8 = E4M3(clamp(W / s8, ±R)) rather than on W, with s8 carried as
/// <see cref="GroupParams.GlobalScale"/> ([1], or [rows, 1] when several weights are solved together). A value is
/// s8 · E4M3(clamp(qdq_int(w / s8), ±R)). Every integer rule (scale, zero, rounding) is <see cref="IntWeightQuantizer"/>'s.
/// </summary>
public sealed class Fp8AwareIntQuantizer : IWeightQuantizer
{
    private readonly IWeightQuantizer _int;
    private readonly E4M3Variant _variant;

    internal Fp8AwareIntQuantizer(QuantSpec spec, string flagPrefix)
    {
        Spec = spec;
        _variant = spec.Fp8Variant;
        _int = new IntWeightQuantizer(spec with { Fp8Aware = false }, flagPrefix);
    }

    public QuantSpec Spec { get; }

    /// <summary>The integer grid, marked as followed by FP8 rounding so the fused kernels (which do not know it) are not used.</summary>
    public ElementGrid Grid => _int.Grid with { FollowedByFp8Rounding = true };

    /// <summary>s8 of the whole weight ([1]); GPTQ computes it once before its column loop.</summary>
    public Tensor? ComputeGlobalScale(Tensor w) => Fp8AwareScaling.TensorScale(w, _variant, Spec.Bits);

    public GroupParams ComputeParams(Tensor w, Tensor? globalScale = null, string? tensorName = null)
    {
        using var scope = NewDisposeScope();
        Tensor s8 = globalScale?.to(ScalarType.Float32).to(w.device).reshape(1) ?? Fp8AwareScaling.TensorScale(w, _variant, Spec.Bits);
        Tensor w8 = Fp8AwareScaling.ToFp8(w.to(ScalarType.Float32).div(s8), _variant, Spec.Bits);
        using GroupParams p = _int.ComputeParams(w8, null, tensorName);
        return new GroupParams(p.Scale.clone(), p.Zero?.clone(), null, s8.clone(), p.GroupSize, p.Columns).MoveToOuterDisposeScope();
    }

    public Tensor QuantizeDequantize(Tensor w, GroupParams p, int firstColumn = 0)
    {
        using var scope = NewDisposeScope();
        Tensor s8 = TensorScaleOf(p);
        Tensor q = _int.QuantizeDequantize(w.to(ScalarType.Float32).div(s8), p, firstColumn);
        return Fp8AwareScaling.ToFp8(q, _variant, Spec.Bits).mul_(s8).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Integer codes. For a weight that is already FP8-aware-quantized the nearest integer code is not always the one
    /// that produced it (the E4M3 rounding moves a value by up to a sixteenth of itself, which can exceed half an
    /// integer step), so each element takes the nearest code or its neighbour, whichever dequantizes to the value.
    /// </summary>
    public Tensor Codes(Tensor w, GroupParams p, int firstColumn = 0)
    {
        using var scope = NewDisposeScope();
        Tensor s8 = TensorScaleOf(p);
        Tensor x = w.to(ScalarType.Float32).div(s8);
        Tensor nearest = _int.Codes(x, p, firstColumn);
        var (min, max) = IntGrid.Range(Spec.Bits, Spec.Symmetric);
        Tensor best = nearest;
        Tensor settled = FromCodes(nearest, p, firstColumn).eq(x);
        foreach (long step in new[] { -1L, 1L })
        {
            Tensor candidate = nearest.to(ScalarType.Int64).add(step).clamp(min, max).to(nearest.dtype);
            Tensor hit = FromCodes(candidate, p, firstColumn).eq(x).logical_and(settled.logical_not());
            best = torch.where(hit, candidate, best);
            settled = settled.logical_or(hit);
        }
        return best.MoveToOuterDisposeScope();
    }

    public Tensor Dequantize(Tensor codes, GroupParams p, int firstColumn = 0)
    {
        using var scope = NewDisposeScope();
        return FromCodes(codes, p, firstColumn).mul_(TensorScaleOf(p)).MoveToOuterDisposeScope();
    }

    /// <summary>The FP8 values (before s8) of integer codes.</summary>
    private Tensor FromCodes(Tensor codes, GroupParams p, int firstColumn) =>
        Fp8AwareScaling.ToFp8(_int.Dequantize(codes, p, firstColumn), _variant, Spec.Bits);

    private static Tensor TensorScaleOf(GroupParams p) => p.GlobalScale
        ?? throw new QuantSharpException("FP8-aware INT parameters carry no per-tensor FP8 scale s8 (global_scale); they were not made by this quantizer.");
}
