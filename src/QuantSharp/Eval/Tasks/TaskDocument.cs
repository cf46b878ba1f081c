using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// One dataset row (a JSON object from a JSONL line), with dotted-path lookup ("choices.text", "endings[0]") and the
/// {path} templates task definitions use. Errors name the file and line the row came from.
/// </summary>
public sealed class TaskDocument
{
    public JsonObject Fields { get; }
    /// <summary>"file:line" of the row, for error messages.</summary>
    public string Origin { get; }
    /// <summary>Position in its split (lm-eval's doc_id).</summary>
    public int Index { get; }

    public TaskDocument(JsonObject fields, string origin, int index)
    {
        Fields = fields;
        Origin = origin;
        Index = index;
    }

    public JsonNode Get(string path)
    {
        JsonNode? node = Fields;
        foreach (string part in path.Split('.'))
        {
            string key = part;
            int? index = null;
            int bracket = part.IndexOf('[');
            if (bracket >= 0 && part.EndsWith(']'))
            {
                key = part[..bracket];
                index = int.Parse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture);
            }
            if (key.Length > 0) node = node is JsonObject o && o.TryGetPropertyValue(key, out var child) ? child : null;
            if (index is { } i) node = node is JsonArray a && i >= 0 && i < a.Count ? a[i] : null;
            if (node is null) throw new QuantSharpException($"{Origin}: field '{path}' not found in the document.");
        }
        return node!;
    }

    public string GetString(string path) => AsText(Get(path), path);

    public IReadOnlyList<string> GetList(string path) =>
        Get(path) is JsonArray a ? a.Select(n => AsText(n!, path)).ToList()
            : throw new QuantSharpException($"{Origin}: field '{path}' is not a list.");

    private string AsText(JsonNode node, string path) => node.GetValueKind() switch
    {
        JsonValueKind.String => node.GetValue<string>(),
        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => node.ToJsonString(),
        _ => throw new QuantSharpException($"{Origin}: field '{path}' is not text or a number."),
    };

    /// <summary>Fills {path} placeholders; {{ and }} are literal braces.</summary>
    public string Render(string template)
    {
        var sb = new StringBuilder(template.Length + 64);
        for (int i = 0; i < template.Length; i++)
        {
            char c = template[i];
            if (c == '{' && i + 1 < template.Length && template[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < template.Length && template[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int end = template.IndexOf('}', i + 1);
            if (end < 0) throw new QuantSharpException($"template \"{template}\": unclosed '{{'.");
            sb.Append(GetString(template[(i + 1)..end].Trim()));
            i = end;
        }
        return sb.ToString();
    }

    /// <summary>Reads a JSONL file: one JSON object per non-empty line.</summary>
    public static List<TaskDocument> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: task data file not found (check --tasks-data).");
        if (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase))
            throw new QuantSharpException($"{path}: Parquet is not supported; convert the split to JSONL (one JSON object per line).");
        var docs = new List<TaskDocument>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { throw new QuantSharpException($"{path}:{lineNo}: not valid JSON ({e.Message})."); }
            if (node is not JsonObject obj) throw new QuantSharpException($"{path}:{lineNo}: expected a JSON object per line.");
            docs.Add(new TaskDocument(obj, $"{path}:{lineNo}", docs.Count));
        }
        if (docs.Count == 0) throw new QuantSharpException($"{path}: no documents.");
        return docs;
    }
}
