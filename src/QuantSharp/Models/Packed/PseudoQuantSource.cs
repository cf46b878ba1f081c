using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.IO;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>
/// A QuantSharp pseudoquant folder read back as a <see cref="QuantizationResult"/>, so it can be exported to a packed
/// format: the stored weights are the fake-quantized ones, the online rotations and activation quantizers are
/// restored as <c>eval</c> does, and each linear's group parameters come from
/// <see cref="PseudoQuantExporter.WeightParamsFile"/>; codes are then re-derived from the weights and those exact
/// parameters (and checked to reproduce them).
/// </summary>
public sealed class PseudoQuantSource : IDisposable
{
    private PseudoQuantSource(CausalLM model, QuantizationResult result)
    {
        Model = model;
        Result = result;
    }

    public CausalLM Model { get; }
    public QuantizationResult Result { get; }

    /// <summary>True when the folder is a QuantSharp pseudoquant export (as opposed to an unquantized model).</summary>
    public static bool IsPseudoQuant(string dir) =>
        ModelConfig.Load(dir).Raw["quantization_config"] is JsonObject q
        && q["quant_method"] is JsonValue v && v.TryGetValue(out string? m) && m == PseudoQuantExporter.QuantMethod;

    public static PseudoQuantSource Load(string dir, ScalarType dtype, Device device)
    {
        string configPath = Path.Combine(dir, "config.json");
        if (ModelConfig.Load(dir).Raw["quantization_config"] is not JsonObject q || !IsPseudoQuant(dir))
            throw new InvalidFileException(configPath, $"not a QuantSharp pseudoquant checkpoint (quantization_config.quant_method is not {PseudoQuantExporter.QuantMethod})");
        string paramsPath = Path.Combine(dir, PseudoQuantExporter.WeightParamsFile);
        if (!File.Exists(paramsPath))
            throw new InvalidFileException(paramsPath, "missing: this pseudoquant folder predates packed export (it has no quantization parameters to re-derive codes from); re-run quantize --export pseudoquant, or quantize with --export FORMAT directly");
        var config = ConfigOf(q, configPath);
        var model = CausalLM.Load(dir, dtype, device);
        QuantizationResult? result = null;
        try
        {
            result = new QuantizationResult(model, config);
            var online = OnlineQuantization.Restore(model, dir);
            result.Layers.AddRange(online);
            foreach (var layer in model.Layers)
                if (!online.Any(s => s.Index == layer.Index)) result.Layers.Add(new LayerQuantState(layer.Index));
            using var file = SafetensorsFile.Open(paramsPath);
            foreach (var st in result.Layers)
            {
                foreach (var (name, linear) in model.Layers[st.Index].Linears())
                {
                    string prefix = $"model.layers.{st.Index}.{name}";
                    if (!file.Contains(prefix + ".scale"))
                        throw new InvalidFileException(paramsPath, "missing", prefix + ".scale");
                    Tensor scale = file.Read(prefix + ".scale").to(float32);
                    Tensor? Opt(string suffix) => file.Contains(prefix + suffix) ? file.Read(prefix + suffix) : null;
                    int columns = checked((int)linear.InFeatures);
                    if (scale.dim() != 2 || scale.shape[1] == 0 || columns % scale.shape[1] != 0)
                        throw new InvalidFileException(paramsPath, $"scale shape [{string.Join(", ", scale.shape)}] does not fit {columns} input columns", prefix + ".scale");
                    st.WeightParams[name] = new GroupParams(scale.to(model.Device), Opt(".zero")?.to(float32).to(model.Device),
                        Opt(".scale_bytes")?.to(model.Device), Opt(".global_scale")?.to(float32).to(model.Device),
                        columns / checked((int)scale.shape[1]), columns);
                }
            }
            return new PseudoQuantSource(model, result);
        }
        catch
        {
            result?.Dispose();
            model.Dispose();
            throw;
        }
    }

    private static QuantizationConfig ConfigOf(JsonObject q, string path)
    {
        var t = q["transform"] as JsonObject;
        return new QuantizationConfig
        {
            Method = q["method"]?.GetValue<string>() == "gptq" ? QuantMethod.Gptq : QuantMethod.Rtn,
            Weights = q["weights"] is JsonObject w ? OnlineQuantization.ParseSpec(w, path) : null,
            Activations = q["activations"] is JsonObject a ? OnlineQuantization.ParseSpec(a, path) : null,
            Transform = t is null ? TransformKind.Identity : TransformKinds.Parse(t["kind"]!.GetValue<string>(), "quantization_config.transform.kind"),
            TransformGroupSize = t?["group_size"]?.GetValue<int>() ?? 128,
            TransformRandomSigns = t?["random_signs"]?.GetValue<bool>() ?? false,
            TransformSeed = t?["seed"]?.GetValue<long>() ?? 0,
        };
    }

    public void Dispose()
    {
        Result.Dispose();
        Model.Dispose();
    }
}
