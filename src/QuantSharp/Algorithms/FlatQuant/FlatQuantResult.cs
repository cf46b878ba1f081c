using QuantSharp.Models;
using QuantSharp.Quantizers;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>One layer's calibration: the MSE of its quantized output against the float layer at the first and last epoch.</summary>
public sealed record FlatQuantLayerReport(int Layer, double FirstLoss, double LastLoss, bool Resumed, double Seconds);

/// <summary>
/// A FlatQuant-quantized model in memory: merged, fake-quantized weights in the model, the online state per layer
/// (installed on the layers) and the weight quantization parameters export packs codes from.
/// </summary>
public sealed class FlatQuantResult(CausalLM model, FlatQuantOptions options) : IDisposable
{
    public CausalLM Model { get; } = model;
    public FlatQuantOptions Options { get; } = options;
    public List<FlatQuantOnline> Layers { get; } = new();
    /// <summary>Per-channel parameters of every quantized linear, by full name (model.layers.N.self_attn.q_proj).</summary>
    public Dictionary<string, GroupParams> WeightParams { get; } = new();
    public List<FlatQuantLayerReport> Reports { get; } = new();
    public double Seconds { get; set; }

    public FlatQuantRuntime Runtime => FlatQuantCalibrator.RuntimeOf(Model.Config, Options);

    /// <summary>The spec of the weights: int, per output channel, symmetric, min/max.</summary>
    public QuantSpec WeightSpec => FlatQuantCalibrator.WeightSpecOf(Options);

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        foreach (var p in WeightParams.Values) p.Dispose();
    }
}
