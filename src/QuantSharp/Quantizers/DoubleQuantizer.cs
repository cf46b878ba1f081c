using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// The stored form of double-quantized scales (<see cref="DoubleQuantSpec"/>): value of scale k (row-major over the
/// [rows, groups] scale tensor) = Codes[k] · Scales[k / GroupSize] + Mean. Owns its tensors.
/// </summary>
public sealed class DoubleQuantParams : IDisposable
{
    public DoubleQuantParams(Tensor codes, Tensor scales, Tensor? mean, int bits, int groupSize)
    {
        Codes = codes;
        Scales = scales;
        Mean = mean;
        Bits = bits;
        GroupSize = groupSize;
    }

    /// <summary>Signed integer codes (int8, [rows, groups] like the scale they encode), in [−2^(b−1), 2^(b−1) − 1].</summary>
    public Tensor Codes { get; }

    /// <summary>float32 [ceil(rows·groups / GroupSize)]: one second-level scale per run of GroupSize codes.</summary>
    public Tensor Scales { get; }

    /// <summary>float32 [1]: the mean of the original scales, subtracted before quantizing (INC's "asym"); null when symmetric.</summary>
    public Tensor? Mean { get; }

    public int Bits { get; }

    public int GroupSize { get; }

    /// <summary>The dequantized scales, float32 of the codes' shape.</summary>
    public Tensor Dequantize()
    {
        using var scope = NewDisposeScope();
        long n = Codes.numel();
        Tensor perCode = Scales.repeat_interleave(GroupSize).narrow(0, 0, n);
        Tensor v = Codes.to(ScalarType.Float32).reshape(-1).mul(perCode);
        if (Mean is not null) v = v.add(Mean);
        return v.reshape(Codes.shape).MoveToOuterDisposeScope();
    }

    public DoubleQuantParams To(Device device) => new(Codes.to(device).DetachFromDisposeScope(), Scales.to(device).DetachFromDisposeScope(),
        Mean?.to(device).DetachFromDisposeScope(), Bits, GroupSize);

    internal void MoveToOuterDisposeScope()
    {
        Codes.MoveToOuterDisposeScope();
        Scales.MoveToOuterDisposeScope();
        Mean?.MoveToOuterDisposeScope();
    }

    internal void DetachFromDisposeScope()
    {
        Codes.DetachFromDisposeScope();
        Scales.DetachFromDisposeScope();
        Mean?.DetachFromDisposeScope();
    }

    public void Dispose()
    {
        Codes.Dispose();
        Scales.Dispose();
        Mean?.Dispose();
    }
}

/// <summary>
/// Intel Neural Compressor's double quantization of per-group scales: flatten row-major, subtract the mean (its
/// "asym" variant; none when symmetric), cut into groups of <see cref="DoubleQuantSpec.GroupSize"/> (a shorter tail
/// group keeps its own scale), and quantize each group symmetrically with scale absmax/(2^(b−1) − 1)
/// (<see cref="IntGrid.IncSymmetricScale"/>), rounding half to even and clamping to [−2^(b−1), 2^(b−1) − 1].
/// Deviation from INC: a symmetric code that rounds to 0 becomes ±1 (INC would leave a zero scale).
/// </summary>
public static class DoubleQuantizer
{
    public static DoubleQuantParams Quantize(Tensor scale, DoubleQuantSpec spec)
    {
        using var scope = NewDisposeScope();
        Tensor flat = scale.to(ScalarType.Float32).reshape(-1);
        long n = flat.numel();
        Tensor? mean = spec.Symmetric ? null : flat.mean().reshape(1);
        Tensor centred = mean is null ? flat : flat.sub(mean);
        long groups = (n + spec.GroupSize - 1) / spec.GroupSize;
        // Zero padding leaves each group's absmax unchanged.
        Tensor padded = nn.functional.pad(centred, [0, groups * spec.GroupSize - n]).reshape(groups, spec.GroupSize);
        Tensor s2 = IntGrid.IncSymmetricScale(padded.abs().amax([1]), spec.Bits);
        int qMax = (1 << (spec.Bits - 1)) - 1, qMin = -(1 << (spec.Bits - 1));
        Tensor q = padded.div(s2.unsqueeze(1)).round_().clamp_(qMin, qMax).reshape(-1).narrow(0, 0, n);
        // Symmetric: a scale far below its group's largest would decode to 0, and a zero scale cannot quantize its
        // group; the smallest code of its sign keeps it non-zero. (Asymmetric decodes to the mean there instead.)
        if (mean is null) q = torch.where(q.eq(0), torch.where(flat.lt(0), full_like(flat, -1f), full_like(flat, 1f)), q);
        Tensor codes = q.to(ScalarType.Int8).reshape(scale.shape);
        var result = new DoubleQuantParams(codes, s2, mean, spec.Bits, spec.GroupSize);
        result.MoveToOuterDisposeScope();
        return result;
    }
}
