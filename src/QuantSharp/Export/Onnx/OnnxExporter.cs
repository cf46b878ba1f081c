using QuantSharp.IO;
using QuantSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Export.Onnx;

/// <summary>What an ONNX export wrote.</summary>
public sealed record OnnxExportReport(
    string Path, string Format, long FileBytes, long Parameters, long QuantizedWeights, long QuantizedBytes, int Nodes)
{
    /// <summary>Bits per quantized decoder weight (packed codes + scales + zero points); 32 for a float export.</summary>
    public double LinearBitsPerWeight => QuantizedWeights == 0 ? 32 : QuantizedBytes * 8.0 / QuantizedWeights;

    /// <summary>File bits over all model parameters (float embeddings, norms and lm_head included).</summary>
    public double FileBitsPerWeight => FileBytes * 8.0 / Parameters;
}

/// <summary>
/// Writes a Llama/Qwen causal LM as one ONNX file ONNX Runtime runs: decoder linears as com.microsoft.MatMulNBits
/// (INT4/INT8, block-wise along the input dimension, quantized by <see cref="MatMulNBitsWeights"/>), everything else
/// float32 from standard ops. The file is written to a temporary name and moved into place, so a failed export never
/// leaves a partial file.
/// </summary>
public static class OnnxExporter
{
    public static OnnxExportReport Export(string modelDir, string outPath, OnnxExportOptions options)
    {
        options.Validate();
        using var model = CausalLM.Load(modelDir, float32, CPU);
        return Export(model, outPath, options);
    }

    public static OnnxExportReport Export(CausalLM model, string outPath, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options.Validate();
        CheckWidths(model, options);
        using var noGrad = no_grad();
        var built = OnnxDecoderGraph.Build(model, options);
        string version = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0";
        byte[] bytes = built.Graph.Serialize($"quantsharp-{model.Config.ModelType}-{options.Label}", version);
        AtomicFile.WriteAllBytes(outPath, bytes);
        return new OnnxExportReport(outPath, options.Label, bytes.LongLength, model.ParameterCount(),
            built.QuantizedWeights, built.QuantizedBytes, built.Graph.Nodes.Count);
    }

    /// <summary>
    /// Replaces every decoder linear's weight by the values the export stores (quantize then dequantize with the same
    /// quantizer and parameters), so QuantSharp's own forward computes what ONNX Runtime should. No-op for --float.
    /// </summary>
    public static void ApplyQuantization(CausalLM model, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options.Validate();
        if (options.Float) return;
        CheckWidths(model, options);
        var quantizer = MatMulNBitsWeights.QuantizerFor(options);
        using var noGrad = no_grad();
        foreach (var layer in model.Layers)
        {
            foreach (var (name, linear) in layer.Linears())
            {
                using var scope = NewDisposeScope();
                var w = linear.Weight.to(float32);
                using var p = quantizer.ComputeParams(w, tensorName: $"model.layers.{layer.Index}.{name}.weight");
                linear.SetWeight(quantizer.QuantizeDequantize(w, p).to(linear.Weight.dtype));
            }
        }
    }

    /// <summary>Fails before any work when the block size does not divide some linear's input width.</summary>
    private static void CheckWidths(CausalLM model, OnnxExportOptions options)
    {
        if (options.Float) return;
        foreach (var layer in model.Layers)
            foreach (var (name, linear) in layer.Linears())
                MatMulNBitsWeights.CheckWidth(linear.InFeatures, options, $"model.layers.{layer.Index}.{name}.weight");
    }
}
