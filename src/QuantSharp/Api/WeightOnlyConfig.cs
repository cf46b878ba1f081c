namespace QuantSharp.Api;

/// <summary>
/// Intel Neural Compressor's weight-only configuration, one record per algorithm (<see cref="RtnConfig"/>,
/// <see cref="GptqConfig"/>, …) with INC's argument names as properties (snake_case in JSON: use_sym, group_size …)
/// and INC's defaults. The record itself is the global configuration; <see cref="SetLocal"/> adds per-layer rules.
/// </summary>
public abstract record WeightOnlyConfig
{
    private List<LocalRule> _local = [];

    /// <summary>The algorithm's name as INC and the JSON recipe spell it: rtn, gptq, awq, teq, hqq, autoround.</summary>
    public abstract string Algorithm { get; }

    /// <summary>int (bits from <see cref="Bits"/>), int4/int8 (bits in the name), nf4, fp4, fp4_e2m1_bnb, fp4_e2m1,
    /// the FP-Quant formats (mxfp4, nvfp4), or fp32/bf16/fp16 = leave the linear in float.</summary>
    public string Dtype { get; init; } = "int";
    public int Bits { get; init; } = 4;
    public bool UseSym { get; init; } = true;
    /// <summary>Input columns per scale; −1 = one group per output channel.</summary>
    public int GroupSize { get; init; } = 32;
    /// <summary>1: groups run along the input dimension (the only layout here); 0: along the output dimension.</summary>
    public int GroupDim { get; init; } = 1;
    public bool UseFullRange { get; init; }
    public bool UseMseSearch { get; init; }
    public bool UseDoubleQuant { get; init; }
    public string DoubleQuantDtype { get; init; } = "int";
    public int DoubleQuantBits { get; init; } = 8;
    public bool DoubleQuantUseSym { get; init; }
    public int DoubleQuantGroupSize { get; init; } = 256;
    /// <summary>Quantize the output projection too (with round-to-nearest); by default it stays float, as in INC.</summary>
    public bool QuantLmHead { get; init; }

    /// <summary>INC argument names this algorithm accepts (JSON keys); other properties keep their defaults.</summary>
    public abstract IReadOnlyList<string> Keys { get; }

    /// <summary>Per-layer rules, in the order they were set (a later matching rule wins).</summary>
    public IReadOnlyList<LocalRule> Local => _local;

    /// <summary>True when <see cref="Dtype"/> keeps the linear in float.</summary>
    public bool IsFloat => Dtype is "fp32" or "bf16" or "fp16";

    /// <summary>
    /// Uses <paramref name="config"/> (any algorithm) for the linears whose name matches <paramref name="pattern"/>
    /// (a regex matched from the start of the full name or of any dot-separated part of it: "lm_head", "mlp",
    /// "q_proj", "layers\.0\.") or whose module type it names ("Linear"). Returns this config, as INC's set_local does.
    /// </summary>
    public WeightOnlyConfig SetLocal(string pattern, WeightOnlyConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Local.Count > 0)
            throw new QuantSharpException($"local rule '{pattern}': a local configuration cannot have local rules of its own.");
        _local.Add(new LocalRule(pattern, config));
        return this;
    }

    /// <summary>A copy (with) gets its own list of rules, so changing it never changes the original.</summary>
    protected WeightOnlyConfig(WeightOnlyConfig original)
    {
        ArgumentNullException.ThrowIfNull(original);
        _local = [.. original._local];
        Dtype = original.Dtype;
        Bits = original.Bits;
        UseSym = original.UseSym;
        GroupSize = original.GroupSize;
        GroupDim = original.GroupDim;
        UseFullRange = original.UseFullRange;
        UseMseSearch = original.UseMseSearch;
        UseDoubleQuant = original.UseDoubleQuant;
        DoubleQuantDtype = original.DoubleQuantDtype;
        DoubleQuantBits = original.DoubleQuantBits;
        DoubleQuantUseSym = original.DoubleQuantUseSym;
        DoubleQuantGroupSize = original.DoubleQuantGroupSize;
        QuantLmHead = original.QuantLmHead;
    }

    protected WeightOnlyConfig() { }

    /// <summary>The common INC arguments of the group-wise integer algorithms (RTN, AWQ, TEQ).</summary>
    protected static readonly string[] CommonKeys =
    [
        "dtype", "bits", "use_sym", "group_size", "group_dim", "use_full_range", "use_mse_search",
        "use_double_quant", "double_quant_dtype", "double_quant_bits", "double_quant_use_sym", "double_quant_group_size",
        "quant_lm_head",
    ];
}

/// <summary>One per-layer rule: a name regex or module type, and the configuration for what it matches.</summary>
public sealed record LocalRule(string Pattern, WeightOnlyConfig Config);
