using QuantSharp.Formats;

namespace QuantSharp.Quantizers;

/// <summary>
/// What to quantize to: element format, bits, grouping (<see cref="GroupSize"/> &gt; 0 columns per group along the
/// input dimension, <see cref="PerChannel"/> or <see cref="PerTensor"/>), symmetry, observer and, for MXFP4, the scale
/// rule. Call <see cref="Validate"/> (the factories do) before use.
/// </summary>
public sealed record QuantSpec(
    QuantFormat Format,
    int Bits,
    int GroupSize,
    bool Symmetric = true,
    ObserverKind Observer = ObserverKind.MinMax,
    MxScaleRule MxRule = MxScaleRule.FpQuant)
{
    /// <summary>GroupSize value meaning one group per output row.</summary>
    public const int PerChannel = -1;

    /// <summary>GroupSize value meaning one group for the whole tensor.</summary>
    public const int PerTensor = 0;

    /// <summary>E4M3 encoding of <see cref="QuantFormat.Fp8"/> elements.</summary>
    public E4M3Variant Fp8Variant { get; init; } = E4M3Variant.Ocp;

    /// <summary>
    /// INC's fp8_aware (DPQ) for INT: every dequantized weight is an FP8 value of <see cref="Fp8Variant"/>
    /// (<see cref="Fp8AwareIntQuantizer"/>).
    /// </summary>
    public bool Fp8Aware { get; init; }

    /// <summary>
    /// INC's use_full_range for symmetric INT: scale = absmax/2^(b−1), negated when the group's largest magnitude is
    /// positive, so the extreme value lands exactly on the extra negative level −2^(b−1).
    /// </summary>
    public bool FullRange { get; init; }

    /// <summary>
    /// Symmetric INT scale rule: FP-Quant's 2·absmax/(2^b − 1) (default) or INC's RTN rule absmax/(2^(b−1) − 1)
    /// (<see cref="IntGrid.IncSymmetricScale"/>). <see cref="FullRange"/> overrides both.
    /// </summary>
    public IntSymmetricRule SymmetricRule { get; init; } = IntSymmetricRule.FpQuant;

    /// <summary>
    /// INC's group_dim: 1 (default) groups consecutive input columns of a row; 0 groups consecutive output rows of a
    /// column (the quantizer works on the transposed weight). Per-linear methods (RTN) only.
    /// </summary>
    public int GroupDim { get; init; } = 1;

    /// <summary>Quantize the per-group scales themselves (INC's use_double_quant); null = float32 scales.</summary>
    public DoubleQuantSpec? DoubleQuant { get; init; }

    /// <summary>True for the formats given as a level table (nf4, fp4_e2m1_bnb, fp4_e2m1).</summary>
    public bool IsLevelTable => TableOf(Format) is not null;

    /// <summary>The level table of a table format, else null.</summary>
    public static LevelTable? TableOf(QuantFormat format) => format switch
    {
        QuantFormat.Nf4 => LevelTable.Nf4,
        QuantFormat.Fp4Bnb => LevelTable.Fp4Bnb,
        QuantFormat.Fp4E2M1Inc => LevelTable.Fp4E2M1Inc,
        _ => null,
    };

    public static QuantSpec Int(int bits, int groupSize, bool symmetric = true, ObserverKind observer = ObserverKind.MinMax) =>
        new(QuantFormat.Int, bits, groupSize, symmetric, observer);

    public static QuantSpec Fp(int groupSize, ObserverKind observer = ObserverKind.MinMax) =>
        new(QuantFormat.Fp, 4, groupSize, true, observer);

    public static QuantSpec MxFp4(MxScaleRule rule = MxScaleRule.FpQuant, ObserverKind observer = ObserverKind.MinMax) =>
        new(QuantFormat.MxFp, 4, MxFp4Scales.GroupSize, true, observer, rule);

    public static QuantSpec NvFp4(ObserverKind observer = ObserverKind.MinMax) =>
        new(QuantFormat.NvFp, 4, NvFp4Scales.GroupSize, true, observer);

    public static QuantSpec Fp8(int groupSize = PerChannel, E4M3Variant variant = E4M3Variant.Ocp) =>
        new(QuantFormat.Fp8, 8, groupSize, true) { Fp8Variant = variant };

    /// <summary>The group size a format fixes (16 for nvfp, 32 for mxfp), or null when it is free.</summary>
    public static int? FixedGroupSize(QuantFormat format) => format switch
    {
        QuantFormat.NvFp => NvFp4Scales.GroupSize,
        QuantFormat.MxFp => MxFp4Scales.GroupSize,
        _ => null,
    };

    /// <summary>Lower-case format name as written on the command line.</summary>
    public string FormatName => NameOf(Format);

    public static string NameOf(QuantFormat format) => format switch
    {
        QuantFormat.Int => "int",
        QuantFormat.Fp => "fp",
        QuantFormat.MxFp => "mxfp",
        QuantFormat.NvFp => "nvfp",
        QuantFormat.Fp8 => "fp8",
        QuantFormat.Nf4 => "nf4",
        QuantFormat.Fp4Bnb => "fp4_e2m1_bnb",
        QuantFormat.Fp4E2M1Inc => "fp4_e2m1",
        _ => format.ToString(),
    };

    /// <summary>The format whose <see cref="NameOf"/> is <paramref name="name"/> (as saved configs spell it), or null.</summary>
    public static QuantFormat? FormatFromName(string name) =>
        Enum.GetValues<QuantFormat>().Where(f => NameOf(f) == name).Select(f => (QuantFormat?)f).FirstOrDefault();

    /// <summary>
    /// Throws <see cref="QuantSharpException"/> naming the flag (<paramref name="flagPrefix"/> + "bits"/"group-size",
    /// e.g. "--w-" or "--a-") when the combination cannot be quantized.
    /// </summary>
    public void Validate(string flagPrefix = "--w-")
    {
        string bitsFlag = flagPrefix + "bits", groupFlag = flagPrefix + "group-size";
        switch (Format)
        {
            case QuantFormat.Int when Bits is < IntGrid.MinBits or > IntGrid.MaxBits:
                throw new QuantSharpException($"{bitsFlag} {Bits}: format int supports {IntGrid.MinBits} to {IntGrid.MaxBits} bits.");
            case QuantFormat.Int when Symmetric && Bits < IntGrid.MinSymmetricBits:
                throw new QuantSharpException($"{bitsFlag} {Bits}: symmetric int needs at least {IntGrid.MinSymmetricBits} bits; 1-bit int is asymmetric only (add --asym).");
            case QuantFormat.Nf4 or QuantFormat.Fp4Bnb or QuantFormat.Fp4E2M1Inc when Bits != 4:
                throw new QuantSharpException($"{bitsFlag} {Bits}: format {FormatName} is a table of 4-bit levels; use {bitsFlag} 4.");
            case QuantFormat.Fp or QuantFormat.MxFp or QuantFormat.NvFp when Bits != 4:
                throw new QuantSharpException($"{bitsFlag} {Bits}: format {FormatName} has 4-bit E2M1 elements only; use {bitsFlag} 4.");
            case QuantFormat.Fp8 when Bits != 8:
                throw new QuantSharpException($"{bitsFlag} {Bits}: format fp8 has 8-bit E4M3 elements only; use {bitsFlag} 8.");
        }
        if (Fp8Aware && Format != QuantFormat.Int)
            throw new QuantSharpException($"--fp8-aware applies to format int (INT codes dequantized to FP8), not {FormatName}.");
        if (Fp8Aware && (FullRange || DoubleQuant is not null || GroupDim != 1))
            throw new QuantSharpException("--fp8-aware cannot be combined with --use-full-range, --double-quant or --group-dim 0.");
        if (!Symmetric && Format != QuantFormat.Int)
            throw new QuantSharpException($"format {FormatName} is symmetric only; asymmetric (zero-point) quantization applies to format int.");
        if (FullRange && !(Format == QuantFormat.Int && Symmetric))
            throw new QuantSharpException($"--use-full-range applies to symmetric int only (format {FormatName}{(Symmetric ? "" : ", asymmetric")}).");
        if (SymmetricRule != IntSymmetricRule.FpQuant && !(Format == QuantFormat.Int && Symmetric))
            throw new QuantSharpException($"--int-sym-rule {SymmetricRule.ToString().ToLowerInvariant()} applies to symmetric int only (format {FormatName}{(Symmetric ? "" : ", asymmetric")}).");
        if (GroupDim is not (0 or 1))
            throw new QuantSharpException($"--group-dim {GroupDim}: expected 1 (groups along the input dimension) or 0 (along the output dimension).");
        if (Observer == ObserverKind.ClipSearch && Format is QuantFormat.MxFp or QuantFormat.NvFp)
            throw new QuantSharpException($"--use-mse-search (clip-ratio search) applies to formats with a float scale (int, fp, nf4, fp4), not {FormatName}.");
        if (DoubleQuant is { } dq)
        {
            dq.Validate();
            if (Format is QuantFormat.MxFp or QuantFormat.NvFp or QuantFormat.Fp8)
                throw new QuantSharpException($"--double-quant: format {FormatName} has no float32 group scales to quantize.");
        }
        if (GroupSize < PerChannel)
            throw new QuantSharpException($"{groupFlag} {GroupSize}: expected a positive group size, {PerChannel} (per channel) or {PerTensor} (per tensor).");
        int? fixedSize = FixedGroupSize(Format);
        if (fixedSize is int g && GroupSize != g)
            throw new QuantSharpException(
                $"{groupFlag} {Describe(GroupSize)} conflicts with format {FormatName}, whose scales are shared by groups of exactly {g} elements; " +
                $"set {groupFlag} {g} or leave it unset.");
    }

    private static string Describe(int groupSize) => groupSize switch
    {
        PerChannel => "-1 (per channel)",
        PerTensor => "0 (per tensor)",
        _ => groupSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
