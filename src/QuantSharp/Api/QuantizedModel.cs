using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.Models;
using QuantSharp.Models.Packed;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Api;

/// <summary>
/// A quantized model: the in-memory result of <see cref="PreparedModel.Convert"/> (save it with <see cref="Save"/>),
/// or a folder in QuantSharp's format loaded back by <see cref="Load"/> without the original model.
/// </summary>
public sealed class QuantizedModel : IDisposable
{
    private readonly bool _ownsModel;

    internal QuantizedModel(CausalLM model, QuantizationResult result, ResolvedRecipe recipe)
    {
        Model = model;
        Result = result;
        Recipe = recipe;
    }

    private QuantizedModel(CausalLM model, JsonObject qconfig)
    {
        Model = model;
        QConfig = qconfig;
        _ownsModel = true;
    }

    public CausalLM Model { get; }

    /// <summary>What the run recorded (per-linear errors, timings); null for a loaded model.</summary>
    public QuantizationResult? Result { get; }

    /// <summary>The configuration each linear resolved to; null for a loaded model (see <see cref="QConfig"/>).</summary>
    public ResolvedRecipe? Recipe { get; }

    /// <summary>A loaded model's qconfig.json (recipe and per-linear configurations); null in memory.</summary>
    public JsonObject? QConfig { get; }

    /// <summary>Writes QuantSharp's packed format (docs/quantsharp-format.md) to <paramref name="dir"/>.</summary>
    public void Save(string dir, bool overwrite = false)
    {
        if (Result is null || Recipe is null) throw new InvalidOperationException("a loaded model is saved already; copy its folder instead.");
        var layerConfigs = Recipe.ByLinear.ToDictionary(kv => kv.Key, kv => RecipeJson.Settings(kv.Value));
        QuantSharpExporter.Write(Result, dir, overwrite, "--save", RecipeJson.ToRecipe(Recipe.Root), layerConfigs);
    }

    /// <summary>Loads a folder written by <see cref="Save"/> (or quantize --export quantsharp).</summary>
    public static QuantizedModel Load(string dir, ScalarType? dtype = null, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new QuantSharpException($"{dir}: folder not found.");
        using var packed = PackedCheckpoint.TryOpen(dir) as QuantSharpCheckpoint
            ?? throw new QuantSharpException($"{dir}: not a QuantSharp quantized folder (config.json's quantization_config.quant_method is not '{QuantSharpExporter.QuantMethod}').");
        var loaded = packed.Load(dtype ?? float32, device ?? CPU);
        return new QuantizedModel(loaded.Model, packed.QConfig);
    }

    public void Dispose()
    {
        Result?.Dispose();
        if (_ownsModel) Model.Dispose();
    }
}
