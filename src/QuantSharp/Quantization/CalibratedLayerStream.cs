using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// The low-memory mode for calibrated methods (GPTQ, alone or mixed with RTN/HQQ in a recipe): as the checkpoint
/// streams past, the embedding table turns the calibration windows into layer 0's inputs, and each decoder layer is
/// built from its own tensors only, calibrated and quantized by the pipeline's <see cref="DecoderLayerStep"/> (the
/// same Hessians, solver and options as the in-memory run), re-run to give the next layer its inputs, packed into the
/// output and freed. Memory holds one layer, the calibration activations and the layer's GPTQ working set, never the
/// model. CPU only, like the rest of the low-memory mode.
/// </summary>
internal sealed class CalibratedLayerStream : IDisposable
{
    private readonly ModelConfig _model;
    private readonly ScalarType _dtype;
    private readonly QuantizationConfig _config;
    private readonly int[][] _calibration;
    private readonly DecoderLayerStep _step;
    private List<Tensor>? _hidden;
    private Tensor? _cos, _sin;

    public CalibratedLayerStream(ModelConfig model, ScalarType dtype, QuantizationConfig config, int[][] calibration,
        List<LayerQuantReport> reports, List<string> warnings)
    {
        _model = model;
        _dtype = dtype;
        _config = config;
        _calibration = calibration;
        var clock = new PhaseClock(CPU);
        _step = new DecoderLayerStep(model, dtype, config, CPU, blockAlgorithm: null, new OutOfMemoryFallback(config, CPU, null), clock,
            reports, warnings, progress: null, onHessians: null);
    }

    /// <summary>Layer 0's calibration inputs from the embedding table (model dtype, as the loaded model holds it).</summary>
    public void Embed(TokenEmbedding embed)
    {
        _hidden = LayerwiseQuantizer.EmbedCalibration(embed, _calibration, _config, CPU);
        NumericGuards.CheckActivations(_hidden, "the embeddings of the calibration windows (model.embed_tokens)");
        using var rope = new RotaryEmbedding(_model.Rope, _model.HeadDim, CPU);
        var (cos, sin) = rope.Table(0, _calibration[0].Length, _dtype);
        _cos = cos.DetachFromDisposeScope();
        _sin = sin.DetachFromDisposeScope();
    }

    /// <summary>
    /// Decoder layer <paramref name="index"/>: built from <paramref name="read"/> (checked checkpoint tensors), quantized,
    /// its calibration outputs kept for the next layer; then its tensors in <paramref name="slots"/>' order, each
    /// quantized linear packed as the in-memory writer packs it (qconfig.json entries into <paramref name="layers"/>).
    /// The layer and its quantization state are freed once the last tensor has been written.
    /// </summary>
    public IEnumerable<ExportTensor> Layer(int index, IReadOnlyList<ParameterSlot> slots, Func<string, long[], Tensor> read,
        JsonObject layers, IReadOnlyDictionary<string, JsonObject>? layerConfigs)
    {
        if (_hidden is null) throw new InvalidOperationException("the embeddings stream before the decoder layers");
        string prefix = $"model.layers.{index}.";
        var layer = CausalLM.BuildLayer(_model, index, read);
        LayerQuantState? state = null;
        try
        {
            using (no_grad())
            {
                NumericGuards.CheckWeights(layer);
                (state, var blockOutputs) = _step.Quantize(layer, _hidden, _cos, _sin);
                _hidden = _step.Advance(layer, _hidden, blockOutputs, _cos, _sin);
            }
            var parameters = layer.named_parameters().ToDictionary(p => prefix + p.name, p => (Tensor)p.parameter);
            foreach (var slot in slots)
            {
                using var scope = NewDisposeScope();
                if (!parameters.TryGetValue(slot.Name, out var tensor))
                    throw new InvalidOperationException($"{slot.Name}: not a parameter of the built layer (ModelLayout and CausalLM disagree)");
                string? linear = slot.Name.EndsWith(".weight", StringComparison.Ordinal) && slot.Shape.Length == 2 ? slot.Name[..^".weight".Length] : null;
                if (linear is not null && state.WeightParams.TryGetValue(linear[prefix.Length..], out var p)
                    && _config.For(linear) is { Weights: { } spec } c)
                {
                    foreach (var packed in QuantSharpExporter.PackInto(new QuantSharpExporter.Packed(linear, tensor, p, spec, c), layers, layerConfigs))
                        yield return packed;
                }
                else yield return new ExportTensor(slot.Name, tensor);
            }
        }
        finally
        {
            state?.Dispose();
            layer.Dispose();
        }
    }

    public void Dispose()
    {
        if (_hidden is not null) foreach (var t in _hidden) t.Dispose();
        _hidden = null;
        _cos?.Dispose();
        _sin?.Dispose();
    }
}
