using QuantSharp.Models;
using QuantSharp.Quantization;

namespace QuantSharp.Api;

/// <summary>
/// A configuration applied to one model: which INC configuration each linear resolves to (global, then module-type
/// rules, then name rules in the order set, later ones winning, as INC's to_config_mapping), the pipeline
/// configuration built from it, and warnings for rules that matched nothing.
/// </summary>
public sealed class ResolvedRecipe
{
    private ResolvedRecipe(WeightOnlyConfig root, IReadOnlyDictionary<string, WeightOnlyConfig> byLinear,
        QuantizationConfig pipeline, IReadOnlyList<string> warnings)
    {
        Root = root;
        ByLinear = byLinear;
        Pipeline = pipeline;
        Warnings = warnings;
    }

    public WeightOnlyConfig Root { get; }

    /// <summary>Full linear name → the INC configuration it uses (lm_head: a float one unless quant_lm_head).</summary>
    public IReadOnlyDictionary<string, WeightOnlyConfig> ByLinear { get; }

    /// <summary>What <see cref="LayerwiseQuantizer"/> runs.</summary>
    public QuantizationConfig Pipeline { get; }

    public IReadOnlyList<string> Warnings { get; }

    /// <param name="where">Names the source in errors and warnings (a recipe file, or "config").</param>
    /// <param name="pipeline">Calibration and device settings (its method and weight spec are replaced).</param>
    public static ResolvedRecipe Resolve(CausalLM model, WeightOnlyConfig root, QuantizationConfig pipeline, string where) =>
        Resolve(model.Config, root, pipeline, where);

    /// <summary>Resolves against config.json alone (the low-memory streaming mode never loads the model).</summary>
    public static ResolvedRecipe Resolve(ModelConfig model, WeightOnlyConfig root, QuantizationConfig pipeline, string where)
    {
        var names = LinearNames.Of(model);
        var byLinear = names.ToDictionary(n => n, _ => root);
        var warnings = new List<string>();
        // Module-type rules first, then name rules, each group in the order set: INC applies op types before names.
        var ordered = root.Local.Where(r => LinearNames.IsTypePattern(r.Pattern))
            .Concat(root.Local.Where(r => !LinearNames.IsTypePattern(r.Pattern)));
        foreach (var rule in ordered)
        {
            var matched = LinearNames.IsTypePattern(rule.Pattern)
                ? names
                : names.Where(n => LinearNames.Compile(rule.Pattern, where).IsMatch(n)).ToList();
            if (matched.Count == 0)
                warnings.Add($"{where}: local rule '{rule.Pattern}' ({rule.Config.Algorithm}) matches no linear of the model.");
            foreach (var n in matched) byLinear[n] = rule.Config;
        }
        // AWQ, TEQ and AutoRound work on whole decoder blocks (scales folded across linears, block-output losses): they
        // can be the global algorithm only, and then every decoder linear follows it (rules may still address lm_head).
        static bool IsBlock(WeightOnlyConfig c) => c is AwqConfig or TeqConfig or AutoRoundConfig && !c.IsFloat;
        if (root.Local.FirstOrDefault(r => IsBlock(r.Config)) is { } blockRule)
            throw new QuantSharpException($"{where}: local rule '{blockRule.Pattern}': {blockRule.Config.Algorithm} works on whole decoder blocks, " +
                                          "so it can only be the global algorithm.");
        if (IsBlock(root) && byLinear.FirstOrDefault(kv => kv.Key != OutputHeadQuantizer.Name && !ReferenceEquals(kv.Value, root)) is { Key: { } other })
            throw new QuantSharpException($"{where}: {root.Algorithm} is global, so its decoder linears cannot take local rules (a rule matches '{other}').");
        // INC keeps the output projection float unless the global configuration sets quant_lm_head.
        string head = OutputHeadQuantizer.Name;
        if (!root.QuantLmHead) byLinear[head] = new RtnConfig { Dtype = "fp32" };

        // One pipeline configuration per distinct INC configuration, so linears sharing one are solved together.
        var pipelines = new Dictionary<WeightOnlyConfig, QuantizationConfig>(ReferenceEqualityComparer.Instance);
        QuantizationConfig For(WeightOnlyConfig c)
        {
            if (!pipelines.TryGetValue(c, out var p))
            {
                string section = ReferenceEquals(c, root) ? "global" : $"local '{root.Local.FirstOrDefault(r => ReferenceEquals(r.Config, c))?.Pattern ?? head}'";
                pipelines[c] = p = ConfigMapping.ToPipeline(c, pipeline, $"{where} {c.Algorithm} {section}");
            }
            return p;
        }
        var resolved = byLinear.ToDictionary(kv => kv.Key, kv => For(kv.Value));
        CheckGroupSizes(model, resolved, byLinear, where);

        var global = For(root);
        bool trueSequential = byLinear.Values.OfType<GptqConfig>().Any(g => g.TrueSequential && !g.IsFloat);
        var distinct = pipelines.Values.ToList();
        var perLinear = new PerLinearConfigs(n => resolved.TryGetValue(n, out var c) ? c : global, distinct);
        var top = global with
        {
            PerLinear = perLinear,
            TrueSequential = trueSequential,
            Method = distinct.Any(c => c.Method == QuantMethod.Gptq && c.Weights is not null) ? QuantMethod.Gptq : global.Method,
        };
        return new ResolvedRecipe(root, byLinear, top, warnings);
    }

    /// <summary>A group size must divide the input width of every linear it applies to; the error names the tensor.</summary>
    private static void CheckGroupSizes(ModelConfig model, Dictionary<string, QuantizationConfig> resolved,
        Dictionary<string, WeightOnlyConfig> byLinear, string where)
    {
        foreach (var (name, c) in resolved)
        {
            if (c.Weights is not { GroupSize: > 0 } spec) continue;
            var (outF, inF) = ModelLayout.LinearShapeOf(model, name);
            bool alongOutputs = spec.GroupDim == 0;
            long columns = alongOutputs ? outF : inF;
            if (columns % spec.GroupSize != 0)
                throw new QuantSharpException($"{where}: {byLinear[name].Algorithm} group_size {spec.GroupSize} does not divide the " +
                                              $"{columns} {(alongOutputs ? "output rows (group_dim 0)" : "input columns")} of tensor '{name}.weight'.");
        }
    }
}
