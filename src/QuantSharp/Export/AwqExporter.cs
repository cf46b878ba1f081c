using System.Text.Json.Nodes;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// AutoAWQ's GEMM layout (transformers' AwqConfig version "gemm", vLLM's awq / awq_marlin). Per 4-bit linear:
/// <c>qweight</c> int32 [in, out/8] and <c>qzeros</c> int32 [in/g, out/8], each word holding 8 output columns in
/// AutoAWQ's interleaved order (bits 4k..4k+3 hold column 0,2,4,6,1,3,5,7 [k] of the 8), zeros stored as they are
/// (no −1); <c>scales</c> float16 [in/g, out]. Symmetric runs store zero point 8.
/// </summary>
public static class AwqExporter
{
    public const string QuantMethod = "awq";

    /// <summary>The run settings AWQ can hold (weight-only INT4 in positive groups, no rotation); returns the weight spec.</summary>
    public static Quantizers.QuantSpec Check(QuantizationConfig c)
    {
        var spec = IntLinearCodes.CheckWeightOnly(c, "awq", 4);
        if (spec.GroupSize <= 0)
            throw new QuantSharpException($"awq export: AWQ kernels need a positive group size; this run has --w-group-size {spec.GroupSize}.");
        return spec;
    }

    public static void Write(QuantizationResult result, string outDir, bool overwrite = false, string outFlag = "--out")
    {
        var spec = Check(result.Config);
        var linears = QuantizedLinear.All(result, "awq");
        var model = result.Model;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            ExportFolder.WriteTensors(tmp, Tensors(result, linears, spec));
            ExportFolder.WriteConfig(tmp, model, new JsonObject
            {
                ["quant_method"] = QuantMethod,
                ["bits"] = 4,
                ["group_size"] = IntLinearCodes.ConfigGroupSize(spec),
                ["zero_point"] = true,
                ["version"] = "gemm",
                ["modules_to_not_convert"] = null,
            });
            ExportFolder.CopyTokenizer(tmp, model);
        });
    }

    private static IEnumerable<ExportTensor> Tensors(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears, Quantizers.QuantSpec spec) =>
        IntLinearCodes.WithPackedLinears(result, linears, spec, (lin, c) =>
        [
            new ExportTensor(lin.Prefix + ".qweight", BitPacking.PackInt32(c.Codes.t(), 4, dim: 1, BitPacking.AwqOrder)),
            new ExportTensor(lin.Prefix + ".qzeros", BitPacking.PackInt32(c.Zeros.t(), 4, dim: 1, BitPacking.AwqOrder)),
            new ExportTensor(lin.Prefix + ".scales", c.Scales.t().to(float16).contiguous()),
        ]);
}
