using QuantSharp.Models;
using QuantSharp.Quantization;

namespace QuantSharp.Api;

/// <summary>
/// INC's prepare → calibrate → convert flow over the layer-wise pipeline:
/// <code>
/// var q = Quantizer.Prepare(model, new GptqConfig { Bits = 4, GroupSize = 128, UseSym = false });
/// q.Calibrate(windows);
/// using var qm = q.Convert();
/// qm.Save("out");
/// </code>
/// or in one call, <see cref="Quantize"/>.
/// </summary>
public static class Quantizer
{
    /// <summary>
    /// Resolves <paramref name="config"/> against <paramref name="model"/> (every local rule, group size and dtype is
    /// checked now, before any work); warnings (a local rule matching nothing) are in <see cref="PreparedModel.Warnings"/>.
    /// </summary>
    /// <param name="pipeline">Calibration and device settings (num sequences, batch size, compute device …); its
    /// method and weight format are replaced by <paramref name="config"/>'s.</param>
    /// <param name="source">Names the configuration's origin in messages (e.g. the recipe file).</param>
    public static PreparedModel Prepare(CausalLM model, WeightOnlyConfig config, QuantizationConfig? pipeline = null, string source = "config")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        var recipe = ResolvedRecipe.Resolve(model, config, pipeline ?? new QuantizationConfig(), source);
        return new PreparedModel(model, recipe);
    }

    /// <summary>Prepare, calibrate on <paramref name="calibration"/> (token windows; null for RTN), convert.</summary>
    public static QuantizedModel Quantize(CausalLM model, WeightOnlyConfig config, IEnumerable<int[]>? calibration,
        QuantizationConfig? pipeline = null)
    {
        var q = Prepare(model, config, pipeline);
        if (calibration is not null) q.Calibrate(calibration);
        return q.Convert();
    }
}

/// <summary>
/// A model with a resolved configuration, collecting calibration data. The layer-wise pipeline re-runs the
/// calibration inputs through each layer after the previous one is quantized, so it keeps the token windows rather
/// than statistics gathered on the float model.
/// </summary>
public sealed class PreparedModel
{
    private readonly List<int[]> _calibration = [];
    private bool _converted;

    internal PreparedModel(CausalLM model, ResolvedRecipe recipe)
    {
        Model = model;
        Recipe = recipe;
    }

    public CausalLM Model { get; }
    public ResolvedRecipe Recipe { get; }
    public IReadOnlyList<string> Warnings => Recipe.Warnings;

    /// <summary>True when some linear's algorithm needs calibration data (GPTQ).</summary>
    public bool NeedsCalibration => Recipe.Pipeline.NeedsCalibration;

    /// <summary>Adds calibration windows (token ids, all of one length).</summary>
    public PreparedModel Calibrate(IEnumerable<int[]> windows)
    {
        ArgumentNullException.ThrowIfNull(windows);
        foreach (var w in windows)
        {
            if (_calibration.Count > 0 && w.Length != _calibration[0].Length)
                throw new QuantSharpException($"calibration window {_calibration.Count} has {w.Length} tokens; the first had {_calibration[0].Length} (all windows must be one length).");
            _calibration.Add(w);
        }
        return this;
    }

    /// <summary>Quantizes the model in place and returns it with what the run recorded.</summary>
    public QuantizedModel Convert(Action<int, int, string>? progress = null)
    {
        if (_converted) throw new InvalidOperationException("Convert was already called: the model is quantized in place.");
        if (NeedsCalibration && _calibration.Count == 0)
            throw new QuantSharpException("this configuration needs calibration data (GPTQ): call Calibrate(windows) before Convert().");
        _converted = true;
        var result = LayerwiseQuantizer.Run(Model, Recipe.Pipeline, _calibration.Count > 0 ? [.. _calibration] : null, progress);
        return new QuantizedModel(Model, result, Recipe);
    }
}
