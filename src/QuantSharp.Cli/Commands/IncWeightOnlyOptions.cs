using System.CommandLine;
using QuantSharp.Algorithms.Hqq;
using QuantSharp.Quantizers;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// `quantize` flags of Intel Neural Compressor's weight-only configs (RTNConfig extras, double quant, HQQConfig), with
/// INC's spellings accepted as aliases so a config can be carried over.
/// </summary>
internal sealed class IncWeightOnlyOptions
{
    private readonly Option<bool> _fullRange = new("--use-full-range", "--use_full_range") { Description = "symmetric int: scale absmax/2^(b-1), using the extra negative level (INC)" };
    private readonly Option<string> _symRule = new("--int-sym-rule") { Description = "symmetric int scale: fpquant (2*absmax/(2^b-1), default) | inc (absmax/(2^(b-1)-1), INC's RTN)", DefaultValueFactory = _ => "fpquant" };
    private readonly Option<bool> _mseSearch = new("--use-mse-search", "--use_mse_search") { Description = "INC clip search: one ratio 1 - i/200 (i < 40) per tensor by weight MSE (= --w-observer clip)" };
    private readonly Option<int> _groupDim = new("--group-dim", "--group_dim") { Description = "1: groups along the input dimension (default); 0: along the output dimension (rtn only)", DefaultValueFactory = _ => 1 };
    private readonly Option<bool> _doubleQuant = new("--double-quant", "--use_double_quant") { Description = "quantize the per-group scales too (INC double quant)" };
    private readonly Option<string> _doubleQuantDtype = new("--double-quant-dtype", "--double_quant_dtype") { Description = "int (the only one)", DefaultValueFactory = _ => "int" };
    private readonly Option<int> _doubleQuantBits = new("--double-quant-bits", "--double_quant_bits") { Description = "bits of the quantized scales (default 8)", DefaultValueFactory = _ => 8 };
    private readonly Option<bool> _doubleQuantSym = new("--double-quant-sym", "--double_quant_use_sym") { Description = "symmetric double quant (INC default: asymmetric, the scales' mean subtracted)" };
    private readonly Option<bool> _doubleQuantAsym = new("--double-quant-asym") { Description = "asymmetric double quant (the default; stated explicitly)" };
    private readonly Option<int> _doubleQuantGroup = new("--double-quant-group-size", "--double_quant_group_size") { Description = "scales per double-quant group (default 256)", DefaultValueFactory = _ => 256 };
    private readonly Option<bool> _hqqQuantZero = new("--hqq-quant-zero", "--quant_zero") { Description = "HQQ: quantize zero points to 8 bits (default true; --hqq-quant-zero false to keep them float)", DefaultValueFactory = _ => true };
    private readonly Option<bool> _hqqQuantScale = new("--hqq-quant-scale", "--quant_scale") { Description = "HQQ: quantize scales to 8 bits (default false)" };
    private readonly Option<int> _hqqScaleGroup = new("--hqq-scale-quant-group-size", "--scale_quant_group_size") { Description = "HQQ: scales per 8-bit scale group (default 128)", DefaultValueFactory = _ => 128 };
    private readonly Option<int> _hqqIters = new("--hqq-iters") { Description = "HQQ: at most this many proximal iterations (default 20)", DefaultValueFactory = _ => 20 };

    public void AddTo(Command cmd)
    {
        foreach (Option o in new Option[] { _fullRange, _symRule, _mseSearch, _groupDim, _doubleQuant, _doubleQuantDtype, _doubleQuantBits, _doubleQuantSym,
                     _doubleQuantAsym, _doubleQuantGroup, _hqqQuantZero, _hqqQuantScale, _hqqScaleGroup, _hqqIters })
            cmd.Options.Add(o);
    }

    /// <summary>The weight spec with the INC extras applied.</summary>
    public QuantSpec Apply(ParseResult r, QuantSpec spec)
    {
        var observer = spec.Observer;
        if (r.GetValue(_mseSearch))
        {
            if (observer == ObserverKind.Mse)
                throw new QuantSharpException("--use-mse-search (INC's clip search) and --w-observer mse (FP-Quant's) are two different observers; pick one.");
            observer = ObserverKind.ClipSearch;
        }
        DoubleQuantSpec? dq = null;
        if (r.GetValue(_doubleQuant))
        {
            string dtype = r.GetValue(_doubleQuantDtype)!;
            if (!dtype.Equals("int", StringComparison.OrdinalIgnoreCase))
                throw new QuantSharpException($"--double-quant-dtype {dtype}: only int is supported.");
            if (r.GetValue(_doubleQuantSym) && r.GetValue(_doubleQuantAsym))
                throw new QuantSharpException("--double-quant-sym and --double-quant-asym contradict each other; give one.");
            dq = new DoubleQuantSpec(r.GetValue(_doubleQuantBits), r.GetValue(_doubleQuantSym), r.GetValue(_doubleQuantGroup));
        }
        var symRule = r.GetValue(_symRule)!.ToLowerInvariant() switch
        {
            "fpquant" => IntSymmetricRule.FpQuant,
            "inc" => IntSymmetricRule.Inc,
            var x => throw new QuantSharpException($"--int-sym-rule {x}: expected fpquant or inc."),
        };
        return spec with { SymmetricRule = symRule, Observer = observer, FullRange = r.GetValue(_fullRange), GroupDim = r.GetValue(_groupDim), DoubleQuant = dq };
    }

    public HqqOptions Hqq(ParseResult r) => new()
    {
        QuantZero = r.GetValue(_hqqQuantZero),
        QuantScale = r.GetValue(_hqqQuantScale),
        ScaleQuantGroupSize = r.GetValue(_hqqScaleGroup),
        Iterations = r.GetValue(_hqqIters),
    };
}
