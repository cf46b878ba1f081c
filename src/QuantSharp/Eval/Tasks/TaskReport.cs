using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// The JSON of a task run: {"model", "results": {task: {metric: value}}, "samples": {task: [per-document]}}, the
/// layout lm-eval's results file uses for "results", so the compare table reads either.
/// </summary>
public static class TaskReport
{
    public static JsonObject ToJson(IReadOnlyList<TaskResult> results, IReadOnlyDictionary<string, string> run)
    {
        var root = new JsonObject();
        foreach (var (k, v) in run) root[k] = v;
        var metrics = new JsonObject();
        var samples = new JsonObject();
        foreach (var r in results)
        {
            var m = new JsonObject { ["num_fewshot"] = r.NumFewShot, ["n"] = r.Docs.Count, ["seconds"] = r.Seconds };
            foreach (var (name, value) in r.Metrics) m[name] = double.IsFinite(value) ? value : null;
            metrics[r.Task] = m;
            samples[r.Task] = new JsonArray(r.Docs.Select(d => (JsonNode)Sample(d)).ToArray());
        }
        root["results"] = metrics;
        root["samples"] = samples;
        return root;
    }

    private static JsonObject Sample(DocResult d)
    {
        var o = new JsonObject { ["doc"] = d.Doc };
        if (d.Generation is null)
        {
            o["gold"] = d.Gold;
            o["loglikelihoods"] = new JsonArray(d.LogLikelihoods.Select(x => (JsonNode)x).ToArray());
            o["pred"] = d.Prediction;
            o["pred_norm"] = d.PredictionNorm;
            o["gold_is_greedy"] = d.IsGreedy;
        }
        else
        {
            o["generation"] = d.Generation;
            o["extracted"] = new JsonObject(d.Extracted!.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value)));
            o["exact_match"] = new JsonObject(d.ExactMatch!.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value)));
        }
        return o;
    }

    public static void Write(string path, JsonObject report)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        AtomicFile.WriteAllBytes(full, Encoding.UTF8.GetBytes(report.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
    }

    /// <summary>task → metric → value from a report's "results" (stderr entries and bookkeeping left out).</summary>
    public static Dictionary<string, Dictionary<string, double>> ReadMetrics(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: file not found.");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new QuantSharpException($"{path}: not valid JSON ({e.Message})."); }
        if (root?["results"] is not JsonObject results)
            throw new QuantSharpException($"{path}: no \"results\" object (write one with quantsharp eval --tasks ... --json).");
        var table = new Dictionary<string, Dictionary<string, double>>();
        foreach (var (task, node) in results)
        {
            if (node is not JsonObject metrics) continue;
            var row = new Dictionary<string, double>();
            foreach (var (name, value) in metrics)
            {
                if (name.Contains("stderr") || name is "n" or "num_fewshot" or "seconds" or "alias") continue;
                if (value is JsonValue v && v.TryGetValue<double>(out double x)) row[name] = x;
            }
            table[task] = row;
        }
        return table;
    }

    /// <summary>Metrics where lower is better; their recovery is original / quantized so 100% still means "no loss".</summary>
    public static bool LowerIsBetter(string metric) => metric.StartsWith("perplexity", StringComparison.Ordinal);

    /// <summary>
    /// A Markdown table of the metrics two runs share: original (A), quantized (B) and recovery % = B / A · 100
    /// (A / B for perplexity).
    /// </summary>
    public static string CompareTable(string pathA, string pathB, string? labelA = null, string? labelB = null)
    {
        var a = ReadMetrics(pathA);
        var b = ReadMetrics(pathB);
        var sb = new StringBuilder();
        sb.Append("| task | metric | ").Append(labelA ?? Path.GetFileNameWithoutExtension(pathA)).Append(" | ")
          .Append(labelB ?? Path.GetFileNameWithoutExtension(pathB)).Append(" | recovery % |\n");
        sb.Append("|---|---|---:|---:|---:|\n");
        int rows = 0;
        foreach (var (task, metricsA) in a.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!b.TryGetValue(task, out var metricsB)) continue;
            foreach (var (metric, va) in metricsA.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (!metricsB.TryGetValue(metric, out double vb)) continue;
                double ratio = LowerIsBetter(metric) ? va / vb : vb / va;
                string recovery = double.IsFinite(ratio) ? (100 * ratio).ToString("F2", CultureInfo.InvariantCulture) : "n/a";
                sb.Append(CultureInfo.InvariantCulture, $"| {task} | {metric} | {va:F4} | {vb:F4} | {recovery} |\n");
                rows++;
            }
        }
        if (rows == 0) throw new QuantSharpException($"{pathA} and {pathB} share no task metric to compare.");
        return sb.ToString();
    }
}
