using System.Text.Json.Nodes;
using QuantSharp.Formats;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// FP-Quant's checkpoint layout (transformers' <c>FPQuantConfig</c>, vLLM's fp_quant method; QuTLASS kernels), as
/// FP-Quant's <c>model_quant.py --export_quantized_model realquant|pseudoquant</c> writes it. Per quantized linear:
/// <list type="bullet">
/// <item><c>qweight</c> uint8 [out, in/2]: E2M1 codes (sign&lt;&lt;3 | magnitude index), column 2j in the low nibble
/// (FP-Quant's FP4_BITPACKING_PERM maps its sorted-grid index to exactly this code);</item>
/// <item><c>scales</c> uint8 [out, in/g]: E4M3 bytes of s·gs (NVFP4, g = 16) or E8M0 bytes of s·3 (MXFP4, g = 32);</item>
/// <item><c>forward_hadamard_matrix</c>, <c>backward_hadamard_matrix</c> [h, h] in the model dtype: the block each
/// group of h activations is right-multiplied by (the same matrix twice, as FP-Quant writes it);</item>
/// <item><c>weight_global_scale</c>, <c>act_global_scale</c> float32 [1] (3.0 for MXFP4's abs_max rule);</item>
/// </list>
/// the original <c>weight</c> is dropped (pseudoquant: <c>dqweight</c> holds the dequantized weight instead of
/// qweight/scales). The weight is the rotated one, so a consumer rotating activations by the stored matrix and
/// quantizing them reproduces the W4A4 model.
/// </summary>
public static class FpQuantExporter
{
    public const string QuantMethod = "fp_quant";

    public static void Write(QuantizationResult result, string outDir, bool pseudoquant, bool overwrite = false, string outFlag = "--out")
    {
        string format = pseudoquant ? "fp-quant-pseudoquant" : "fp-quant";
        var (dtypeName, group, init) = Check(result.Config, result.Model.Config, format);
        var linears = QuantizedLinear.All(result, format);
        var model = result.Model;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            ExportFolder.WriteTensors(tmp, Tensors(result, linears, pseudoquant, group));
            ExportFolder.WriteConfig(tmp, model, new JsonObject
            {
                ["quant_method"] = QuantMethod,
                ["forward_dtype"] = dtypeName,
                ["forward_method"] = "abs_max",
                ["backward_dtype"] = "bf16",
                ["hadamard_group_size"] = group,
                ["transform_init"] = init,
                ["modules_to_not_convert"] = new JsonArray("lm_head"),
                ["store_master_weights"] = false,
                ["pseudoquantization"] = pseudoquant,
            });
            ExportFolder.CopyTokenizer(tmp, model);
        });
    }

    /// <summary>What fp_quant can represent: W4A4 of one FP4 format, FP-Quant's MX rule, one orthogonal block size dividing every width.</summary>
    public static (string DType, int Group, string Init) Check(QuantizationConfig c, Models.ModelConfig m, string format)
    {
        var w = c.Weights ?? throw new QuantSharpException($"{format} export: the model has 16-bit weights; fp_quant needs MXFP4 or NVFP4 weights.");
        if (w.Format is not (QuantFormat.NvFp or QuantFormat.MxFp))
            throw new QuantSharpException($"{format} export: weights are {w.FormatName}; fp_quant holds mxfp4 or nvfp4 only (use gptq, awq or compressed-tensors for int).");
        if (c.Activations is not { } a || a.Format != w.Format)
            throw new QuantSharpException($"{format} export: fp_quant quantizes activations to the weights' format at run time, so it needs a W4A4 run " +
                                          $"(--a-bits 4) of format {w.FormatName}; this model has {(c.Activations is null ? "16-bit activations" : c.Activations.FormatName + " activations")}.");
        if (w.Format == QuantFormat.MxFp && (w.MxRule != MxScaleRule.FpQuant || a.MxRule != MxScaleRule.FpQuant))
            throw new QuantSharpException($"{format} export: fp_quant's abs_max MXFP4 uses FP-Quant's scale rule (global scale 3); this model used --mx-scale-rule ocp.");
        string init = c.Transform switch
        {
            TransformKind.Identity => "identity",
            TransformKind.Hadamard => "hadamard",
            TransformKind.Gsr => "gsr",
            _ => throw new QuantSharpException($"{format} export: rotation {c.Transform.Name()} has no fp_quant transform_init (hadamard, gsr or none)."),
        };
        int group = c.Transform == TransformKind.Identity ? w.GroupSize : c.TransformGroupSize;
        foreach (var (name, width) in new[] { ("hidden_size", m.HiddenSize), ("num_heads·head_dim", m.NumHeads * m.HeadDim), ("intermediate_size", m.IntermediateSize) })
            if (width % group != 0)
                throw new QuantSharpException($"{format} export: hadamard group size {group} does not divide {name} {width}; fp_quant needs one block size for every linear.");
        return (w.Format == QuantFormat.NvFp ? "nvfp4" : "mxfp4", group, init);
    }

    private static IEnumerable<ExportTensor> Tensors(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears, bool pseudoquant, int group)
    {
        var model = result.Model;
        var byWeight = linears.ToDictionary(l => l.Prefix + ".weight");
        var spec = result.Config.Weights!;
        foreach (var (name, p) in model.StateDict())
        {
            if (!byWeight.TryGetValue(name, out var lin))
            {
                yield return new ExportTensor(name, p);
                continue;
            }
            if (pseudoquant) yield return new ExportTensor(lin.Prefix + ".dqweight", p);
            else
            {
                using var codes = lin.Codes(spec);
                using var packed = BitPacking.PackNibbles(codes);
                yield return new ExportTensor(lin.Prefix + ".qweight", packed);
                yield return new ExportTensor(lin.Prefix + ".scales", lin.Params.ScaleBytes!);
            }
            using var matrix = Matrix(lin, group, model.DType);
            yield return new ExportTensor(lin.Prefix + ".forward_hadamard_matrix", matrix);
            yield return new ExportTensor(lin.Prefix + ".backward_hadamard_matrix", matrix);
            yield return new ExportTensor(lin.Prefix + ".weight_global_scale", lin.Params.GlobalScale!.to(float32));
            using var act = ActGlobalScale(lin, spec);
            yield return new ExportTensor(lin.Prefix + ".act_global_scale", act);
        }
    }

    private static Tensor Matrix(QuantizedLinear lin, int group, ScalarType dtype) =>
        lin.State.Transforms.TryGetValue(lin.Slot, out var t) ? t.ForwardBlock.to(dtype, CPU, copy: true) : eye(group, dtype: dtype);

    /// <summary>The calibrated NVFP4 activation global scale of the linear's input slot; MXFP4's rule constant 3.</summary>
    private static Tensor ActGlobalScale(QuantizedLinear lin, QuantSpec spec)
    {
        if (spec.Format == QuantFormat.MxFp) return tensor(new[] { MxFp4Scales.GlobalScaleOf(MxScaleRule.FpQuant) });
        var hook = lin.State.ActivationQuantizers.GetValueOrDefault(lin.Slot);
        return hook?.GlobalScale?.to(float32).cpu().reshape(1).clone()
               ?? throw new QuantSharpException($"tensor '{lin.Prefix}': its NVFP4 activation quantizer has no calibrated global scale.");
    }
}
