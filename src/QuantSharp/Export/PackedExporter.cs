using QuantSharp.Quantization;

namespace QuantSharp.Export;

/// <summary>The export formats, by the names <c>--to</c> / <c>--export</c> accept.</summary>
public enum ExportFormat
{
    PseudoQuant,
    FpQuant,
    FpQuantPseudoQuant,
    Gptq,
    GptqV2,
    Awq,
    CompressedTensorsNvFp4,
    CompressedTensorsInt,
    /// <summary>compressed-tensors float-quantized: FP8 weights (vLLM's FP8_DYNAMIC / FP8 schemes).</summary>
    CompressedTensorsFp8,
    /// <summary>QuantSharp's own packed weight-only format (any bits, per-linear configurations, qconfig.json).</summary>
    QuantSharp,
}

/// <summary>One entry point over every writer: parses a format name and writes a <see cref="QuantizationResult"/> in it.</summary>
public static class PackedExporter
{
    public static readonly IReadOnlyDictionary<string, ExportFormat> Names = new Dictionary<string, ExportFormat>(StringComparer.OrdinalIgnoreCase)
    {
        ["pseudoquant"] = ExportFormat.PseudoQuant,
        ["fp-quant"] = ExportFormat.FpQuant,
        ["realquant"] = ExportFormat.FpQuant,
        ["fp-quant-pseudoquant"] = ExportFormat.FpQuantPseudoQuant,
        ["gptq"] = ExportFormat.Gptq,
        ["gptq-v2"] = ExportFormat.GptqV2,
        ["awq"] = ExportFormat.Awq,
        ["compressed-tensors-nvfp4"] = ExportFormat.CompressedTensorsNvFp4,
        ["nvfp4-pack-quantized"] = ExportFormat.CompressedTensorsNvFp4,
        ["compressed-tensors"] = ExportFormat.CompressedTensorsInt,
        ["pack-quantized"] = ExportFormat.CompressedTensorsInt,
        ["compressed-tensors-fp8"] = ExportFormat.CompressedTensorsFp8,
        ["float-quantized"] = ExportFormat.CompressedTensorsFp8,
        ["quantsharp"] = ExportFormat.QuantSharp,
    };

    public static string Known => "pseudoquant, fp-quant (realquant), fp-quant-pseudoquant, gptq, gptq-v2, awq, compressed-tensors-nvfp4, compressed-tensors (pack-quantized), compressed-tensors-fp8 (float-quantized), quantsharp";

    public static ExportFormat Parse(string name, string flag) =>
        Names.TryGetValue(name, out var f) ? f
        : name.Equals("gguf", StringComparison.OrdinalIgnoreCase)
            ? throw new QuantSharpException($"{flag} {name}: GGUF files are written by `quantsharp export-gguf --model DIR --gguf-type q4_k --out FILE.gguf`.")
        : name.Equals("onnx", StringComparison.OrdinalIgnoreCase)
            ? throw new QuantSharpException($"{flag} {name}: ONNX files are written by `quantsharp export-onnx --model DIR --bits 4 --block-size 128 --out FILE.onnx`.")
        : throw new QuantSharpException($"{flag} {name}: unknown format (known: {Known}).");

    /// <summary>
    /// Throws when a run with <paramref name="config"/> on a model of <paramref name="model"/> could not be written in
    /// <paramref name="format"/>, so a long quantization run fails before it starts rather than at export.
    /// </summary>
    public static void CheckCompatible(QuantizationConfig config, Models.ModelConfig model, ExportFormat format)
    {
        // Per-linear configurations (recipes) mix formats and bit widths: only QuantSharp's format and pseudoquant hold that.
        if (config.PerLinear is not null && format is not (ExportFormat.QuantSharp or ExportFormat.PseudoQuant))
            throw new QuantSharpException($"a per-layer recipe is saved with --export quantsharp (or pseudoquant); {Names.First(kv => kv.Value == format).Key} holds one weight format for every linear.");
        // FP8-aware INT (s8 and the FP8 rounding of every value) is held by QuantSharp's format and pseudoquant only.
        if ((config.Weights?.Fp8Aware ?? false) && format is not (ExportFormat.QuantSharp or ExportFormat.PseudoQuant))
            throw new QuantSharpException($"--fp8-aware: {Names.First(kv => kv.Value == format).Key} cannot hold the per-tensor FP8 scale s8; export quantsharp.");
        switch (format)
        {
            case ExportFormat.PseudoQuant: break;
            case ExportFormat.QuantSharp: QuantSharpExporter.Check(config); break;
            case ExportFormat.FpQuant: FpQuantExporter.Check(config, model, "fp-quant"); break;
            case ExportFormat.FpQuantPseudoQuant: FpQuantExporter.Check(config, model, "fp-quant-pseudoquant"); break;
            case ExportFormat.Gptq or ExportFormat.GptqV2: GptqExporter.Check(config, format == ExportFormat.GptqV2); break;
            case ExportFormat.Awq: AwqExporter.Check(config); break;
            case ExportFormat.CompressedTensorsNvFp4 or ExportFormat.CompressedTensorsInt:
                CompressedTensorsExporter.Check(config, format == ExportFormat.CompressedTensorsNvFp4); break;
            case ExportFormat.CompressedTensorsFp8: CompressedTensorsExporter.CheckFp8(config); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
    }

    /// <summary>Writes the folder; returns warnings for the user. <paramref name="outFlag"/> names the folder's flag in errors.</summary>
    public static IReadOnlyList<string> Write(QuantizationResult result, ExportFormat format, string outDir, bool overwrite, string outFlag = "--out")
    {
        // A quantized lm_head (quant_lm_head) is a linear none of the other layouts stores.
        if (result.LmHeadParams is not null && format != ExportFormat.QuantSharp)
            throw new QuantSharpException($"{outFlag} {outDir}: the model's lm_head is quantized (quant_lm_head), which only --export quantsharp stores.");
        IO.DiskSpace.Require(outDir, EstimateBytes(result), outFlag);
        switch (format)
        {
            case ExportFormat.PseudoQuant: PseudoQuantExporter.Write(result, outDir, overwrite); break;
            case ExportFormat.QuantSharp: QuantSharpExporter.Write(result, outDir, overwrite, outFlag); break;
            case ExportFormat.FpQuant: FpQuantExporter.Write(result, outDir, pseudoquant: false, overwrite, outFlag); break;
            case ExportFormat.FpQuantPseudoQuant: FpQuantExporter.Write(result, outDir, pseudoquant: true, overwrite, outFlag); break;
            case ExportFormat.Gptq: GptqExporter.Write(result, outDir, v2: false, overwrite, outFlag); break;
            case ExportFormat.GptqV2: GptqExporter.Write(result, outDir, v2: true, overwrite, outFlag); break;
            case ExportFormat.Awq: AwqExporter.Write(result, outDir, overwrite, outFlag); break;
            case ExportFormat.CompressedTensorsNvFp4: return CompressedTensorsExporter.Write(result, outDir, nvfp4: true, overwrite, outFlag);
            case ExportFormat.CompressedTensorsInt: return CompressedTensorsExporter.Write(result, outDir, nvfp4: false, overwrite, outFlag);
            case ExportFormat.CompressedTensorsFp8: CompressedTensorsExporter.WriteFp8(result, outDir, overwrite, outFlag); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
        return [];
    }

    /// <summary>
    /// Upper bound of what any layout writes: the model's tensors at their in-memory size (packed layouts are smaller)
    /// plus the weight parameters pseudoquant keeps beside them.
    /// </summary>
    public static long EstimateBytes(QuantizationResult result)
    {
        long bytes = result.Model.parameters().Sum(p => p.numel() * p.element_size());
        foreach (var p in result.Layers.SelectMany(l => l.WeightParams.Values))
            bytes += p.Scale.numel() * 4 + (p.Zero?.numel() ?? 0) * 4 + (p.ScaleBytes?.numel() ?? 0);
        return bytes;
    }
}
