using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Quantization.W4A8;

/// <summary>One linear's measured input: its weight shape [out, in] and the largest |x| its input reached.</summary>
public sealed record LinearMeasurement(long OutFeatures, long InFeatures, float InputAbsMax);

/// <summary>
/// The "measure" step of INC's hybrid W4A8 flow: every decoder linear's input absmax over calibration text, kept as
/// JSON next to the model so the conversion can be repeated without running calibration again. A file is only used
/// for the model it was measured on: names and shapes are checked.
/// </summary>
public sealed class ActivationMeasurement
{
    public const string DefaultFileName = "w4a8_measure.json";
    public const int FormatVersion = 1;

    public ActivationMeasurement(IReadOnlyDictionary<string, LinearMeasurement> linears, string? source = null)
    {
        Linears = linears;
        Source = source;
    }

    /// <summary>Full linear name (model.layers.N.self_attn.q_proj) → measurement.</summary>
    public IReadOnlyDictionary<string, LinearMeasurement> Linears { get; }

    /// <summary>What was measured on (calibration file and window count), informational.</summary>
    public string? Source { get; }

    /// <summary>Runs <paramref name="windows"/> through the model, <paramref name="batchSize"/> at a time, recording each decoder linear's input absmax.</summary>
    public static ActivationMeasurement Measure(CausalLM model, int[][] windows, int batchSize = 8, string? source = null)
    {
        if (windows.Length == 0) throw new QuantSharpException("--measure: the calibration data gave no windows.");
        var maxima = new Dictionary<string, float>();
        var shapes = new Dictionary<string, (long Out, long In)>();
        var observed = new List<Models.Layers.DecoderLinear>();
        try
        {
            foreach (var layer in model.Layers)
                foreach (var (name, linear) in layer.Linears())
                {
                    string full = $"model.layers.{layer.Index}.{name}";
                    maxima[full] = 0f;
                    shapes[full] = (linear.OutFeatures, linear.InFeatures);
                    linear.InputObserver = x =>
                    {
                        using var scope = NewDisposeScope();
                        maxima[full] = Math.Max(maxima[full], x.detach().abs().max().to(ScalarType.Float32).item<float>());
                    };
                    observed.Add(linear);
                }
            using var noGrad = no_grad();
            for (int start = 0; start < windows.Length; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var batch = windows.Skip(start).Take(batchSize).ToArray();
                Tensor ids = tensor(batch.SelectMany(w => w.Select(t => (long)t)).ToArray(), ScalarType.Int64)
                    .reshape(batch.Length, batch[0].Length).to(model.Device);
                model.ForwardHidden(ids);
            }
        }
        finally
        {
            foreach (var l in observed) l.InputObserver = null;
        }
        return new ActivationMeasurement(maxima.ToDictionary(kv => kv.Key, kv => new LinearMeasurement(shapes[kv.Key].Out, shapes[kv.Key].In, kv.Value)), source);
    }

    /// <summary>Throws naming the first linear whose name or shape differs between this measurement and the model.</summary>
    public void CheckMatches(CausalLM model, string path)
    {
        var names = new HashSet<string>();
        foreach (var layer in model.Layers)
            foreach (var (name, linear) in layer.Linears())
            {
                string full = $"model.layers.{layer.Index}.{name}";
                names.Add(full);
                if (!Linears.TryGetValue(full, out var m))
                    throw new QuantSharpException($"measure file {path}: has no entry for tensor '{full}'; it was measured on another model (measure again with --measure CALIB).");
                if (m.OutFeatures != linear.OutFeatures || m.InFeatures != linear.InFeatures)
                    throw new QuantSharpException(string.Create(CultureInfo.InvariantCulture,
                        $"measure file {path}: tensor '{full}' is [{m.OutFeatures}, {m.InFeatures}] there but [{linear.OutFeatures}, {linear.InFeatures}] in the model; it was measured on another model."));
            }
        var extra = Linears.Keys.FirstOrDefault(n => !names.Contains(n));
        if (extra is not null)
            throw new QuantSharpException($"measure file {path}: names tensor '{extra}', which this model does not have; it was measured on another model.");
    }

    public void Save(string path)
    {
        var linears = new JsonObject();
        foreach (var (name, m) in Linears.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            linears[name] = new JsonObject { ["shape"] = new JsonArray(m.OutFeatures, m.InFeatures), ["input_absmax"] = m.InputAbsMax };
        var root = new JsonObject { ["format"] = "quantsharp-w4a8-measure", ["format_version"] = FormatVersion, ["source"] = Source, ["linears"] = linears };
        AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
    }

    public static ActivationMeasurement Load(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"measure file {path}: not found; measure first with --measure CALIB.");
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidFileException(path, "not a JSON object");
            if (root["format_version"]?.GetValue<int>() != FormatVersion || root["linears"] is not JsonObject linears)
                throw new InvalidFileException(path, $"not a format_version {FormatVersion} W4A8 measure file (no 'linears')");
            var result = new Dictionary<string, LinearMeasurement>();
            foreach (var (name, node) in linears)
            {
                if (node?["shape"] is not JsonArray { Count: 2 } shape || node["input_absmax"] is null)
                    throw new InvalidFileException(path, "entry needs shape [out, in] and input_absmax", name);
                float absMax = node["input_absmax"]!.GetValue<float>();
                if (!float.IsFinite(absMax) || absMax < 0) throw new InvalidFileException(path, $"input_absmax {absMax} is not a finite non-negative number", name);
                result[name] = new LinearMeasurement(shape[0]!.GetValue<long>(), shape[1]!.GetValue<long>(), absMax);
            }
            return new ActivationMeasurement(result, root["source"]?.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidFileException(path, "invalid W4A8 measure file: " + e.Message, inner: e);
        }
    }
}
