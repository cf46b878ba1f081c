using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// Built-in document transforms for datasets whose prompt needs more than a template (named by a task's "preprocess").
/// Each adds derived fields to the row; the original fields stay.
/// </summary>
public static partial class DocumentPreprocessors
{
    public static void Apply(string? name, TaskDocument doc)
    {
        switch (name)
        {
            case null or "": return;
            case "hellaswag": HellaSwag(doc); return;
            case "winogrande": Winogrande(doc); return;
            default: throw new QuantSharpException($"preprocess '{name}' is unknown (known: hellaswag, winogrande).");
        }
    }

    /// <summary>
    /// HellaSwag as lm-eval prepares it: query = activity_label + ": " + ctx_a + " " + Capitalized(ctx_b), and every
    /// text cleaned of WikiHow's "[title]"/"[step]" markers; adds query, choices, gold.
    /// </summary>
    public static void HellaSwag(TaskDocument doc)
    {
        string ctxB = doc.GetString("ctx_b");
        string ctx = doc.GetString("ctx_a") + " " + PythonCapitalize(ctxB);
        doc.Fields["query"] = CleanHellaSwag(doc.GetString("activity_label") + ": " + ctx);
        doc.Fields["choices"] = new JsonArray(doc.GetList("endings").Select(e => (JsonNode)JsonValue.Create(CleanHellaSwag(e))!).ToArray());
        doc.Fields["gold"] = int.Parse(doc.GetString("label"), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static string CleanHellaSwag(string text)
    {
        text = text.Trim().Replace(" [title]", ". ");
        text = BracketTag().Replace(text, "");
        return text.Replace("  ", " ");
    }

    /// <summary>Python's str.capitalize: first character upper case, the rest lower case.</summary>
    public static string PythonCapitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>
    /// WinoGrande's partial scoring: the sentence's "_" is filled with each option to make the contexts, and the text
    /// after the blank is the shared continuation; adds contexts, continuation, gold ("1"/"2" → 0/1).
    /// </summary>
    public static void Winogrande(TaskDocument doc)
    {
        string sentence = doc.GetString("sentence");
        int blank = sentence.IndexOf('_');
        if (blank < 0) throw new QuantSharpException($"{doc.Origin}: winogrande sentence has no '_' blank.");
        doc.Fields["contexts"] = new JsonArray(
            JsonValue.Create(sentence[..blank] + doc.GetString("option1")),
            JsonValue.Create(sentence[..blank] + doc.GetString("option2")));
        doc.Fields["continuation"] = sentence[(blank + 1)..].Trim();
        string answer = doc.GetString("answer");
        doc.Fields["gold"] = answer switch
        {
            "1" => 0,
            "2" => 1,
            _ => throw new QuantSharpException($"{doc.Origin}: winogrande answer '{answer}' is not \"1\" or \"2\"."),
        };
    }

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex BracketTag();
}
