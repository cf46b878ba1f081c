using QuantSharp.IO;
using QuantSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Export.Onnx;

/// <summary>What an ONNX export wrote.</summary>
public sealed record OnnxExportReport(
    string Path, string Format, long FileBytes, long Parameters, long QuantizedWeights, long QuantizedBytes, int Nodes)
{
    /// <summary>The external-data file beside the model (FILE.onnx.data) when the model exceeded 2 GiB; else null.</summary>
    public string? ExternalDataPath { get; init; }

    /// <summary>Bits per quantized decoder weight (packed codes + scales + zero points); 32 for a float export.</summary>
    public double LinearBitsPerWeight => QuantizedWeights == 0 ? 32 : QuantizedBytes * 8.0 / QuantizedWeights;

    /// <summary>File bits over all model parameters (float embeddings, norms and lm_head included).</summary>
    public double FileBitsPerWeight => FileBytes * 8.0 / Parameters;
}

/// <summary>
/// Writes a Llama/Qwen causal LM as one ONNX file ONNX Runtime runs: decoder linears as com.microsoft.MatMulNBits
/// (INT4/INT8, block-wise along the input dimension, quantized by <see cref="MatMulNBitsWeights"/>), everything else
/// float32 from standard ops. Files are written to temporary names and moved into place, so a failed export never
/// leaves a partial file. A model over protobuf's 2 GiB limit keeps its large initializers in FILE.onnx.data (ONNX
/// external data, which ONNX Runtime loads from beside the model).
/// </summary>
public static class OnnxExporter
{
    public static OnnxExportReport Export(string modelDir, string outPath, OnnxExportOptions options)
    {
        options.Validate();
        using var model = CausalLM.Load(modelDir, float32, CPU);
        return Export(model, outPath, options);
    }

    public static OnnxExportReport Export(CausalLM model, string outPath, OnnxExportOptions options) =>
        Export(model, outPath, options, forceExternalData: false);

    /// <summary><paramref name="forceExternalData"/> writes external data even for a small model (tests).</summary>
    internal static OnnxExportReport Export(CausalLM model, string outPath, OnnxExportOptions options, bool forceExternalData)
    {
        ArgumentNullException.ThrowIfNull(model);
        options.Validate();
        CheckWidths(model, options);
        using var noGrad = no_grad();
        var built = OnnxDecoderGraph.Build(model, options);
        string version = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0";
        string graphName = $"quantsharp-{model.Config.ModelType}-{options.Label}";
        var report = new OnnxExportReport(outPath, options.Label, 0, model.ParameterCount(),
            built.QuantizedWeights, built.QuantizedBytes, built.Graph.Nodes.Count);
        DiskSpace.Require(outPath, built.Graph.EstimatedInlineBytes, "--out");
        if (!forceExternalData && built.Graph.EstimatedInlineBytes <= OnnxGraph.MaxSerializedBytes)
        {
            byte[] bytes = built.Graph.Serialize(graphName, version);
            AtomicFile.WriteAllBytes(outPath, bytes);
            return report with { FileBytes = bytes.LongLength };
        }
        return WriteWithExternalData(built.Graph, graphName, version, outPath, report);
    }

    /// <summary>Model and FILE.onnx.data, both through temporary files; the data file is moved first so the model never points at a missing one.</summary>
    private static OnnxExportReport WriteWithExternalData(OnnxGraph graph, string graphName, string version, string outPath, OnnxExportReport report)
    {
        string dataPath = outPath + ".data";
        string dataTmp = AtomicFile.TempPathFor(dataPath), modelTmp = AtomicFile.TempPathFor(outPath);
        try
        {
            byte[] bytes;
            long dataBytes;
            using (var data = new FileStream(dataTmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                bytes = graph.Serialize(graphName, version, data, Path.GetFileName(dataPath));
                dataBytes = data.Length;
                WriteFaults.At("onnx data", dataPath);
                data.Flush(flushToDisk: true);
            }
            using (var model = new FileStream(modelTmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                model.Write(bytes);
                model.Flush(flushToDisk: true);
            }
            File.Move(dataTmp, dataPath, overwrite: true);
            File.Move(modelTmp, outPath, overwrite: true);
            return report with { FileBytes = bytes.LongLength + dataBytes, ExternalDataPath = dataPath };
        }
        catch
        {
            AtomicFile.TryDelete(dataTmp);
            AtomicFile.TryDelete(modelTmp);
            throw;
        }
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
