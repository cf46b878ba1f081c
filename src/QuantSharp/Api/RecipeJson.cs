using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace QuantSharp.Api;

/// <summary>
/// INC-style JSON recipes (docs/recipes.md): <c>{"rtn": {"global": {...}, "local": {"lm_head": {"dtype": "fp32"}}}}</c>.
/// Several algorithms may appear; at most one has a global section (it applies to every linear), the others
/// contribute local rules. A local entry starts from its algorithm's global settings (INC starts from the defaults;
/// inheriting means a rule names only what differs) and rules apply in file order, later ones winning. Unknown
/// algorithms and keys are errors naming the file and key.
/// </summary>
public static class RecipeJson
{
    public static readonly IReadOnlyDictionary<string, Func<WeightOnlyConfig>> Algorithms = new Dictionary<string, Func<WeightOnlyConfig>>
    {
        ["rtn"] = () => new RtnConfig(),
        ["gptq"] = () => new GptqConfig(),
        ["awq"] = () => new AwqConfig(),
        ["teq"] = () => new TeqConfig(),
        ["hqq"] = () => new HqqConfig(),
        ["autoround"] = () => new AutoRoundConfig(),
    };

    /// <summary>INC spellings accepted besides the property names.</summary>
    private static readonly Dictionary<string, string> Aliases = new() { ["hybrid_act_order"] = "hybrid_order" };

    public static WeightOnlyConfig Load(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"--recipe {path}: file not found.");
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new QuantSharpException($"recipe {path}: invalid JSON ({e.Message}).");
        }
        return Parse(root, path);
    }

    public static WeightOnlyConfig Parse(JsonNode? root, string where)
    {
        if (root is not JsonObject algorithms || algorithms.Count == 0)
            throw new QuantSharpException($"recipe {where}: expected an object keyed by algorithm ({string.Join(", ", Algorithms.Keys)}).");
        WeightOnlyConfig? global = null;
        var rules = new List<LocalRule>();
        foreach (var (algorithm, body) in algorithms)
        {
            if (!Algorithms.TryGetValue(algorithm, out var make))
                throw new QuantSharpException($"recipe {where}: unknown algorithm '{algorithm}' (known: {string.Join(", ", Algorithms.Keys)}).");
            if (body is not JsonObject section) throw new QuantSharpException($"recipe {where}: '{algorithm}' must be an object.");
            // INC's from_dict: an object without global/local is the global configuration itself.
            bool structured = section.ContainsKey("global") || section.ContainsKey("local");
            if (structured)
            {
                var unknown = section.Select(kv => kv.Key).FirstOrDefault(k => k is not ("global" or "local"));
                if (unknown is not null)
                    throw new QuantSharpException($"recipe {where}: {algorithm}: unknown key '{unknown}' beside 'global' and 'local' (put settings inside 'global').");
            }
            JsonObject? globalBody = structured ? section["global"] as JsonObject : section;
            if (structured && section["global"] is { } g && g is not JsonObject)
                throw new QuantSharpException($"recipe {where}: {algorithm}.global must be an object.");
            var algorithmGlobal = globalBody is null ? make() : Apply(make(), globalBody, $"recipe {where}: {algorithm}.global");
            if (globalBody is not null)
            {
                if (global is not null)
                    throw new QuantSharpException($"recipe {where}: both '{global.Algorithm}' and '{algorithm}' have a global section; " +
                                                  "only one algorithm may apply to every linear (give the others local rules).");
                global = algorithmGlobal;
            }
            if (structured && section["local"] is { } localNode)
            {
                if (localNode is not JsonObject local) throw new QuantSharpException($"recipe {where}: {algorithm}.local must be an object keyed by layer pattern.");
                foreach (var (pattern, ruleBody) in local)
                {
                    if (ruleBody is not JsonObject ruleObject)
                        throw new QuantSharpException($"recipe {where}: {algorithm}.local['{pattern}'] must be an object.");
                    rules.Add(new LocalRule(pattern, Apply(algorithmGlobal, ruleObject, $"recipe {where}: {algorithm}.local['{pattern}']")));
                }
            }
        }
        // No global section: linears no rule names stay float.
        global ??= new RtnConfig { Dtype = "fp32" };
        foreach (var r in rules) global.SetLocal(r.Pattern, r.Config);
        return global;
    }

    /// <summary>A copy of <paramref name="start"/> with the JSON keys set (its local rules dropped).</summary>
    private static WeightOnlyConfig Apply(WeightOnlyConfig start, JsonObject body, string where)
    {
        WeightOnlyConfig c = Fresh(start);
        var keys = c.Keys;
        foreach (var (rawKey, value) in body)
        {
            string key = Aliases.GetValueOrDefault(rawKey, rawKey);
            if (!keys.Contains(key))
                throw new QuantSharpException($"{where}: unknown key '{rawKey}' for {c.Algorithm} (known: {string.Join(", ", keys)}).");
            var prop = PropertyOf(c, key);
            object? converted;
            try
            {
                converted = value is null ? null : value.Deserialize(prop.PropertyType);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new QuantSharpException($"{where}: {rawKey} {value?.ToJsonString()}: expected {TypeName(prop.PropertyType)}.");
            }
            if (converted is null && Nullable.GetUnderlyingType(prop.PropertyType) is null && prop.PropertyType.IsValueType)
                throw new QuantSharpException($"{where}: {rawKey} null: expected {TypeName(prop.PropertyType)}.");
            prop.SetValue(c, converted);
        }
        return c;
    }

    /// <summary>One configuration's settings, INC keys → values (what to_dict writes for a config without rules).</summary>
    public static JsonObject Settings(WeightOnlyConfig c)
    {
        var settings = new JsonObject();
        foreach (var key in c.Keys) settings[key] = JsonSerializer.SerializeToNode(PropertyOf(c, key).GetValue(c));
        return settings;
    }

    /// <summary>
    /// A recipe file that <see cref="Parse"/> reads back to the same resolution: the global algorithm's section first,
    /// then local rules grouped by algorithm (each with full settings, so inheritance does not matter).
    /// </summary>
    public static JsonObject ToRecipe(WeightOnlyConfig root)
    {
        var file = new JsonObject { [root.Algorithm] = new JsonObject { ["global"] = Settings(root) } };
        foreach (var r in root.Local)
        {
            var section = file[r.Config.Algorithm] as JsonObject ?? (JsonObject)(file[r.Config.Algorithm] = new JsonObject());
            var local = section["local"] as JsonObject ?? (JsonObject)(section["local"] = new JsonObject());
            local[r.Pattern] = Settings(r.Config);
        }
        return file;
    }

    private static WeightOnlyConfig Fresh(WeightOnlyConfig start)
    {
        // A record copy without the rules: rebuild from a new instance and copy every settable property.
        var c = Algorithms[start.Algorithm]();
        foreach (var p in c.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
            p.SetValue(c, p.GetValue(start));
        return c;
    }

    private static PropertyInfo PropertyOf(WeightOnlyConfig c, string key)
    {
        var name = new StringBuilder();
        foreach (var part in key.Split('_')) name.Append(char.ToUpperInvariant(part[0])).Append(part.AsSpan(1));
        return c.GetType().GetProperty(name.ToString(), BindingFlags.Public | BindingFlags.Instance)
            ?? throw new InvalidOperationException($"{c.GetType().Name} has no property for INC key '{key}'");
    }

    private static string TypeName(Type t) => (Nullable.GetUnderlyingType(t) ?? t) switch
    {
        var x when x == typeof(int) => "an integer",
        var x when x == typeof(double) => "a number",
        var x when x == typeof(bool) => "true or false",
        var x when x == typeof(string) => "a string",
        var x => x.Name,
    };
}
