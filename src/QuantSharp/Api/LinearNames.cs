using System.Text.RegularExpressions;
using QuantSharp.Models;

namespace QuantSharp.Api;

/// <summary>The linears a configuration can address, by full name, and how a local rule's pattern selects them.</summary>
public static class LinearNames
{
    /// <summary>The module type every linear has (INC's torch.nn.Linear, by name).</summary>
    public const string LinearType = "Linear";

    /// <summary>Decoder linears in model order, then lm_head (the output projection, even when tied to the embeddings).</summary>
    public static IReadOnlyList<string> Of(CausalLM model) => Of(model.Config);

    /// <summary>The same names from config.json alone (a model that is not loaded).</summary>
    public static IReadOnlyList<string> Of(ModelConfig config) =>
        [.. Enumerable.Range(0, config.NumLayers).SelectMany(i => ModelLayout.LayerLinears.Select(x => $"model.layers.{i}.{x}")),
            Quantization.OutputHeadQuantizer.Name];

    /// <summary>True when a rule's pattern is a module type rather than a name regex.</summary>
    public static bool IsTypePattern(string pattern) => pattern == LinearType;

    /// <summary>
    /// A name pattern matches when the regex matches at the start of the name or right after one of its dots (so
    /// "mlp", "q_proj" and "layers\.3\." work as well as INC's anchored "model\.layers\.0\..*" and ".*lm_head").
    /// </summary>
    public static Regex Compile(string pattern, string where)
    {
        try
        {
            return new Regex($@"(?:^|(?<=\.))(?:{pattern})", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new QuantSharpException($"{where}: local rule '{pattern}' is not a valid regular expression ({e.Message}).");
        }
    }
}
