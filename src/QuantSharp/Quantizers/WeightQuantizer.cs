using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// The shared pipeline of every format: group the columns, observe each group's range (min/max or MSE search on the
/// unrounded scale), turn it into effective parameters (the format's scale rule), and apply them column-wise.
/// Subclasses supply only the element grid and the scale rule.
/// </summary>
public abstract class WeightQuantizer : IWeightQuantizer
{
    /// <summary>A quantizer for weights; the spec is validated against --w-* flags.</summary>
    public static IWeightQuantizer Create(QuantSpec spec) => Create(spec, "--w-");

    /// <summary>A quantizer whose validation errors name flags starting with <paramref name="flagPrefix"/>.</summary>
    public static IWeightQuantizer Create(QuantSpec spec, string flagPrefix)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate(flagPrefix);
        return spec.Format switch
        {
            QuantFormat.Int when spec.Fp8Aware => new Fp8AwareIntQuantizer(spec, flagPrefix),
            QuantFormat.Int => new IntWeightQuantizer(spec, flagPrefix),
            QuantFormat.Fp or QuantFormat.MxFp or QuantFormat.NvFp => new Fp4WeightQuantizer(spec, flagPrefix),
            QuantFormat.Fp8 => new Fp8WeightQuantizer(spec, flagPrefix),
            QuantFormat.Nf4 or QuantFormat.Fp4Bnb or QuantFormat.Fp4E2M1Inc => new TableWeightQuantizer(spec, flagPrefix),
            _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Format, "unknown format"),
        };
    }

    protected WeightQuantizer(QuantSpec spec, string flagPrefix)
    {
        Spec = spec;
        FlagPrefix = flagPrefix;
    }

    public QuantSpec Spec { get; }

    public abstract ElementGrid Grid { get; }

    protected string FlagPrefix { get; }

    /// <summary>Unrounded scale (and zero point, asymmetric INT only) from per-group min and max, both [R, G, 1].</summary>
    protected abstract (Tensor Scale, Tensor? Zero) RawParams(Tensor min, Tensor max);

    /// <summary>Grid values (float32) of x: integer codes for INT, E2M1/E4M3 values for float formats.</summary>
    protected abstract Tensor ToGrid(Tensor x, Tensor scale, Tensor? zero);

    /// <summary>Dequantized values of grid values.</summary>
    protected abstract Tensor FromGrid(Tensor q, Tensor scale, Tensor? zero);

    /// <summary>Codes of grid values.</summary>
    protected abstract Tensor EncodeGrid(Tensor q);

    /// <summary>Grid values (float32) of codes.</summary>
    protected abstract Tensor DecodeGrid(Tensor codes);

    /// <summary>Effective parameters from the observed raw ones ([R, G] each); <paramref name="globalScale"/> is non-null only for NVFP4.</summary>
    protected abstract GroupParams Finalize(Tensor rawScale, Tensor? zero, Tensor? globalScale, int groupSize, int columns);

    public virtual Tensor? ComputeGlobalScale(Tensor w) => null;

    /// <summary>
    /// max(−min, max) made non-negative: for an all-zero group it is −0.0, which would otherwise encode as the
    /// negative-zero scale byte (0x80).
    /// </summary>
    protected static Tensor AbsMax(Tensor min, Tensor max)
    {
        using var scope = NewDisposeScope();
        return torch.maximum(min.neg(), max).abs_().MoveToOuterDisposeScope();
    }

    /// <summary>The scale with 1 where it is 0 (an all-zero group): x / scale stays finite and the group dequantizes to 0.</summary>
    protected static Tensor NonZeroScale(Tensor rawScale) => torch.where(rawScale.eq(0), torch.ones_like(rawScale), rawScale);

    public GroupParams ComputeParams(Tensor w, Tensor? globalScale = null, string? tensorName = null)
    {
        string name = tensorName ?? "weight";
        CheckMatrix(w, name);
        int rows = checked((int)w.shape[0]), columns = checked((int)w.shape[1]);
        int groupSize = GroupSizeFor(columns, name);
        using var scope = NewDisposeScope();
        Tensor x = w.to(ScalarType.Float32);
        Tensor grouped = Spec.GroupSize == QuantSpec.PerTensor
            ? x.reshape(1, 1, -1)
            : x.reshape(rows, columns / groupSize, groupSize);
        Tensor min = grouped.amin([-1], keepdim: true), max = grouped.amax([-1], keepdim: true);
        Tensor? global = globalScale is not null ? globalScale.to(ScalarType.Float32).to(x.device).reshape(1) : ComputeGlobalScale(x);
        if (Spec.Observer == ObserverKind.ClipSearch)
        {
            float ratio = ClipRatioSearch.Best(grouped, r => RawParams(min.mul(r), max.mul(r)), (g, s, z) => FromGrid(ToGrid(g, s, z), s, z));
            (min, max) = (min.mul(ratio), max.mul(ratio));
        }
        var (scale, zero) = RawParams(min, max);
        if (Spec.Observer == ObserverKind.Mse)
            scale = MseScaleSearch.Search(grouped, scale, zero, (g, s, z) => FromGrid(ToGrid(g, s, z), s, z), Grid);
        GroupParams p = Finalize(scale.squeeze(-1), zero?.squeeze(-1), global, groupSize, columns);
        if (!p.Scale.isfinite().all().item<bool>())
        {
            p.Dispose();
            throw new QuantSharpException($"tensor '{name}': contains NaN or infinite values; cannot compute {Spec.FormatName} quantization scales.");
        }
        if (Spec.DoubleQuant is { } dq) p.SetDoubleQuantized(DoubleQuantizer.Quantize(p.Scale, dq));
        return p.MoveToOuterDisposeScope();
    }

    public Tensor QuantizeDequantize(Tensor w, GroupParams p, int firstColumn = 0)
    {
        using var scope = NewDisposeScope();
        return MapColumns(w.to(ScalarType.Float32), p, firstColumn, (x, s, z) => FromGrid(ToGrid(x, s, z), s, z)).MoveToOuterDisposeScope();
    }

    public Tensor Codes(Tensor w, GroupParams p, int firstColumn = 0)
    {
        using var scope = NewDisposeScope();
        return MapColumns(w.to(ScalarType.Float32), p, firstColumn, (x, s, z) => EncodeGrid(ToGrid(x, s, z))).MoveToOuterDisposeScope();
    }

    public Tensor Dequantize(Tensor codes, GroupParams p, int firstColumn = 0)
    {
        using var scope = NewDisposeScope();
        return MapColumns(DecodeGrid(codes), p, firstColumn, FromGrid).MoveToOuterDisposeScope();
    }

    /// <summary>Columns per group for a tensor of <paramref name="columns"/> input columns.</summary>
    protected int GroupSizeFor(int columns, string tensorName)
    {
        if (Spec.GroupSize is QuantSpec.PerChannel or QuantSpec.PerTensor) return columns;
        if (columns % Spec.GroupSize != 0)
            throw new QuantSharpException(
                $"tensor '{tensorName}': {FlagPrefix}group-size {Spec.GroupSize.ToString(CultureInfo.InvariantCulture)} does not divide its " +
                $"{columns.ToString(CultureInfo.InvariantCulture)} input columns (format {Spec.FormatName}).");
        return Spec.GroupSize;
    }

    private static void CheckMatrix(Tensor w, string name)
    {
        if (w.dim() != 2)
            throw new QuantSharpException($"tensor '{name}': expected a 2-D [rows, columns] tensor to quantize, got shape [{string.Join(", ", w.shape)}].");
        if (!w.is_floating_point())
            throw new QuantSharpException($"tensor '{name}': expected a floating-point tensor to quantize, got {w.dtype}.");
    }

    /// <summary>
    /// Applies an element rule to columns [first, first + k) of the tensor <paramref name="p"/> describes, giving each
    /// column its own group's scale/zero. Whole aligned groups are reshaped (no gather); a run inside one group uses a
    /// narrowed view; anything else gathers per-column parameters.
    /// </summary>
    private static Tensor MapColumns(Tensor w, GroupParams p, int first, Func<Tensor, Tensor, Tensor?, Tensor> rule)
    {
        if (w.dim() != 2) throw new ArgumentException($"expected [rows, k], got [{string.Join(", ", w.shape)}]", nameof(w));
        long rows = w.shape[0], k = w.shape[1];
        if (first < 0 || first + k > p.Columns)
            throw new ArgumentOutOfRangeException(nameof(first), $"columns [{first}, {first + k}) outside the {p.Columns} the parameters cover");
        if (p.Rows != rows && p.Rows != 1)
            throw new ArgumentException($"{rows} rows do not match parameters with {p.Rows} rows", nameof(w));
        using var scope = NewDisposeScope();
        int gs = p.GroupSize;
        Tensor result;
        if (first % gs == 0 && k % gs == 0)
        {
            long g0 = first / gs, gn = k / gs;
            Tensor s = p.Scale.narrow(1, g0, gn).unsqueeze(-1);
            Tensor? z = p.Zero?.narrow(1, g0, gn).unsqueeze(-1);
            result = rule(w.reshape(rows, gn, gs), s, z).reshape(rows, k);
        }
        else if (first / gs == (first + k - 1) / gs)
        {
            long g = first / gs;
            result = rule(w, p.Scale.narrow(1, g, 1), p.Zero?.narrow(1, g, 1));
        }
        else
        {
            Tensor index = arange(first, first + k, ScalarType.Int64, w.device).div(gs, RoundingMode.floor);
            result = rule(w, p.Scale.index_select(1, index), p.Zero?.index_select(1, index));
        }
        return result.MoveToOuterDisposeScope();
    }
}
