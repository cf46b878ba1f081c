using System.Text.Json.Nodes;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// The GPTQ checkpoint layout (AutoGPTQ / GPTQModel; read by transformers+optimum, vLLM's gptq and gptq_marlin,
/// ExLlama). Per quantized linear, with b ∈ {2, 4, 8}, g the group size and pf = 32/b:
/// <list type="bullet">
/// <item><c>qweight</c> int32 [in/pf, out]: codes packed along the input dimension, input row pf·r + k in bits b·k;</item>
/// <item><c>qzeros</c> int32 [in/g, out/pf]: zero points packed along the output dimension the same way; checkpoint
/// format <c>gptq</c> (v1) stores z − 1 (the consumer adds 1 back), <c>gptq_v2</c> stores z;</item>
/// <item><c>scales</c> float16 [in/g, out]; <c>g_idx</c> int32 [in] = i / g (groups are contiguous, so desc_act is false).</item>
/// </list>
/// Codes and zeros are the model's exactly; scales are rounded to float16 (the dtype these kernels read).
/// </summary>
public static class GptqExporter
{
    public const string QuantMethod = "gptq";

    /// <summary>The run settings GPTQ can hold (weight-only INT 2/4/8, no rotation); returns the weight spec.</summary>
    public static Quantizers.QuantSpec Check(QuantizationConfig c, bool v2) => IntLinearCodes.CheckWeightOnly(c, v2 ? "gptq-v2" : "gptq", 2, 4, 8);

    public static void Write(QuantizationResult result, string outDir, bool v2, bool overwrite = false, string outFlag = "--out")
    {
        string format = v2 ? "gptq-v2" : "gptq";
        var spec = Check(result.Config, v2);
        var linears = QuantizedLinear.All(result, format);
        var model = result.Model;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            ExportFolder.WriteTensors(tmp, Tensors(result, linears, spec, v2, format));
            ExportFolder.WriteConfig(tmp, model, new JsonObject
            {
                ["quant_method"] = QuantMethod,
                ["bits"] = spec.Bits,
                ["group_size"] = IntLinearCodes.ConfigGroupSize(spec),
                ["desc_act"] = false,
                ["sym"] = spec.Symmetric,
                ["true_sequential"] = true,
                ["static_groups"] = false,
                ["damp_percent"] = result.Config.Gptq.RelDamp,
                ["checkpoint_format"] = v2 ? "gptq_v2" : "gptq",
                ["modules_in_block_to_quantize"] = null,
            });
            ExportFolder.CopyTokenizer(tmp, model);
        });
    }

    private static IEnumerable<ExportTensor> Tensors(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears, Quantizers.QuantSpec spec, bool v2, string format) =>
        IntLinearCodes.WithPackedLinears(result, linears, spec, (lin, c) => LinearTensors(lin, c, spec, v2, format));

    private static IEnumerable<ExportTensor> LinearTensors(QuantizedLinear lin, IntLinearCodes c, Quantizers.QuantSpec spec, bool v2, string format)
    {
        Tensor zeros = c.Zeros;
        if (!v2)
        {
            if (zeros.eq(0).any().item<bool>())
                throw new QuantSharpException($"{format} export: tensor '{lin.Prefix}' has zero point 0, which GPTQ v1 (zeros stored minus one) cannot hold; export gptq-v2 instead.");
            zeros = zeros - 1;
        }
        Tensor qweight = BitPacking.PackInt32(c.Codes.t(), spec.Bits, dim: 0);
        Tensor qzeros = BitPacking.PackInt32(zeros.t(), spec.Bits, dim: 1);
        Tensor scales = c.Scales.t().to(float16).contiguous();
        long columns = lin.Module.InFeatures;
        Tensor gIdx = arange(columns, ScalarType.Int64).div(c.GroupSize, RoundingMode.floor).to(ScalarType.Int32);
        yield return new ExportTensor(lin.Prefix + ".qweight", qweight);
        yield return new ExportTensor(lin.Prefix + ".qzeros", qzeros);
        yield return new ExportTensor(lin.Prefix + ".scales", scales);
        yield return new ExportTensor(lin.Prefix + ".g_idx", gIdx);
    }
}
