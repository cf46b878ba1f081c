using QuantSharp.Formats;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// A linear's INT quantization in the unsigned form weight-only packed formats store: codes u ∈ [0, 2^b − 1] and
/// integer zero points z with weight = (u − z)·scale. Symmetric codes q ∈ [−2^(b−1), 2^(b−1) − 1] become u = q + 2^(b−1)
/// with z = 2^(b−1); asymmetric codes and zeros are already unsigned. Per-tensor parameters are repeated per row.
/// All tensors are CPU; Codes/Zeros int64, Scales float32.
/// </summary>
public sealed class IntLinearCodes : IDisposable
{
    private IntLinearCodes(Tensor codes, Tensor zeros, Tensor scales, int groupSize)
    {
        Codes = codes;
        Zeros = zeros;
        Scales = scales;
        GroupSize = groupSize;
    }

    /// <summary>[out, in] unsigned codes.</summary>
    public Tensor Codes { get; }
    /// <summary>[out, groups] integer zero points.</summary>
    public Tensor Zeros { get; }
    /// <summary>[out, groups] effective scales.</summary>
    public Tensor Scales { get; }
    public int GroupSize { get; }

    /// <summary>
    /// The model's state dict with each quantized linear's weight replaced by what <paramref name="pack"/> makes of
    /// its codes (the tensors of one linear are alive until the writer asks for the next ones).
    /// </summary>
    public static IEnumerable<ExportTensor> WithPackedLinears(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears,
        QuantSpec spec, Func<QuantizedLinear, IntLinearCodes, IEnumerable<ExportTensor>> pack)
    {
        var byWeight = linears.ToDictionary(l => l.Prefix + ".weight");
        foreach (var (name, p) in result.Model.StateDict())
        {
            if (!byWeight.TryGetValue(name, out var lin))
            {
                yield return new ExportTensor(name, p);
                continue;
            }
            using var c = Of(lin, spec);
            using var scope = NewDisposeScope();
            foreach (var t in pack(lin, c)) yield return t;
        }
    }

    /// <summary>
    /// Checks that a run can be stored by a weight-only INT format without changing the model: INT weights of a
    /// packable width, 16-bit activations and no rotation (these formats have nowhere to put one).
    /// </summary>
    public static QuantSpec CheckWeightOnly(QuantizationConfig c, string format, params int[] allowedBits)
    {
        var w = c.Weights;
        if (w is null || w.Format != QuantFormat.Int)
            throw new QuantSharpException($"{format} export: holds integer weights only; this model's weights are {(w is null ? "16-bit" : w.FormatName)}.");
        if (!allowedBits.Contains(w.Bits))
            throw new QuantSharpException($"{format} export: supports {string.Join("/", allowedBits)}-bit weights; this model has {w.Bits}-bit.");
        if (c.Method == QuantMethod.Hqq)
            throw new QuantSharpException($"{format} export: stores integer zero points, but HQQ's optimised zero points are fractional; " +
                                          "export pseudoquant (or use --method rtn/gptq).");
        if (w.GroupDim != 1)
            throw new QuantSharpException($"{format} export: groups run along the input dimension; this model was quantized with --group-dim {w.GroupDim}.");
        if (c.Activations is not null)
            throw new QuantSharpException($"{format} export: a weight-only (A16) format; this model also quantizes activations ({c.Activations.FormatName}{c.Activations.Bits}).");
        if (c.Transform != TransformKind.Identity)
            throw new QuantSharpException($"{format} export: cannot carry the {c.Transform.Name()} rotation this model was quantized with, so its codes " +
                                          "would not be the model's; quantize without --transform (a rotation-free W4A16 run) or export pseudoquant.");
        return w;
    }

    public static IntLinearCodes Of(QuantizedLinear linear, QuantSpec spec)
    {
        using var scope = NewDisposeScope();
        var p = linear.Params;
        long rows = linear.Module.OutFeatures;
        Tensor q = linear.Codes(spec).to(ScalarType.Int64);
        Tensor scale = p.Scale.cpu().to(float32).expand(rows, p.Groups).contiguous();
        Tensor u, z;
        if (spec.Symmetric)
        {
            long offset = 1L << (spec.Bits - 1);
            u = q + offset;
            z = full(rows, p.Groups, offset, ScalarType.Int64);
        }
        else
        {
            u = q;
            z = p.Zero!.cpu().to(ScalarType.Int64).expand(rows, p.Groups).contiguous();
        }
        var r = new IntLinearCodes(u.MoveToOuterDisposeScope(), z.MoveToOuterDisposeScope(), scale.MoveToOuterDisposeScope(), p.GroupSize);
        return r;
    }

    /// <summary>group_size as the checkpoint configs spell it: −1 for one group per row.</summary>
    public static int ConfigGroupSize(QuantSpec spec) => spec.GroupSize > 0 ? spec.GroupSize : -1;

    public void Dispose()
    {
        Codes.Dispose();
        Zeros.Dispose();
        Scales.Dispose();
    }
}
