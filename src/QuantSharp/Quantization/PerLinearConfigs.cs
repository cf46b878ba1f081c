namespace QuantSharp.Quantization;

/// <summary>
/// Which configuration each linear of a model uses: a resolver from the linear's full name (model.layers.3.mlp.up_proj,
/// lm_head) to one of a fixed set of configurations. The set is known up front so the pipeline can tell before running
/// whether any linear needs calibration (GPTQ) and validate every weight spec once.
/// </summary>
public sealed class PerLinearConfigs
{
    private readonly Func<string, QuantizationConfig> _resolve;

    /// <param name="resolve">Full linear name → one of <paramref name="distinct"/> (same instance, so linears group by it).</param>
    /// <param name="distinct">Every configuration the resolver can return.</param>
    public PerLinearConfigs(Func<string, QuantizationConfig> resolve, IReadOnlyList<QuantizationConfig> distinct)
    {
        _resolve = resolve;
        Distinct = distinct;
    }

    public IReadOnlyList<QuantizationConfig> Distinct { get; }

    public QuantizationConfig Resolve(string linearName) => _resolve(linearName);
}
