using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// compressed-tensors checkpoints (llm-compressor's output; vLLM's compressed-tensors method, transformers'
/// CompressedTensorsConfig). Two formats:
/// <list type="bullet">
/// <item><c>nvfp4-pack-quantized</c>: <c>weight_packed</c> uint8 [out, in/2] (E2M1 codes, column 2j in the low nibble),
/// <c>weight_scale</c> F8_E4M3 [out, in/16] (the E4M3 of s·gs), <c>weight_global_scale</c> float32 [1] = 448·6/amax
/// (stored as that divisor, not its reciprocal: the effective scale is weight_scale / weight_global_scale, and vLLM
/// inverts it at load), and for W4A4 <c>input_global_scale</c> float32 [1] in the same convention;</item>
/// <item><c>pack-quantized</c> (INT W4A16 / W8A16): <c>weight_packed</c> int32 [out, in·b/32] packed along the input
/// dimension, first code in the lowest bits, each code stored as q + 2^(b−1) (compressed-tensors' signed codes made
/// unsigned); <c>weight_scale</c> [out, in/g] in the model dtype; asymmetric runs add <c>weight_zero_point</c> int32
/// [out·b/32, in/g] packed along the output dimension the same way; <c>weight_shape</c> int32 [2].</item>
/// <item><c>float-quantized</c> (FP8 E4M3, vLLM's FP8_DYNAMIC and FP8 schemes): <c>weight</c> F8_E4M3 [out, in] (OCP
/// float8_e4m3fn bytes), <c>weight_scale</c> float32 [out, 1] (strategy channel) or [1] (tensor); input activations
/// dynamic per token (no tensor), or static per tensor with <c>input_scale</c> float32 [1] = absmax/448 from calibration.</item>
/// </list>
/// </summary>
public static class CompressedTensorsExporter
{
    public const string QuantMethod = "compressed-tensors";
    public const string NvFp4Format = "nvfp4-pack-quantized";
    public const string PackQuantizedFormat = "pack-quantized";
    public const string FloatQuantizedFormat = "float-quantized";

    /// <summary>FP8 weights (and FP8 or 16-bit activations) as compressed-tensors' float-quantized format.</summary>
    public static void WriteFp8(QuantizationResult result, string outDir, bool overwrite = false, string outFlag = "--out")
    {
        var (w, a) = CheckFp8(result.Config);
        var linears = QuantizedLinear.All(result, "compressed-tensors-fp8");
        var model = result.Model;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            ExportFolder.WriteTensors(tmp, Fp8Tensors(result, linears, w, a));
            ExportFolder.WriteConfig(tmp, model, Config(w, a, FloatQuantizedFormat));
            ExportFolder.CopyTokenizer(tmp, model);
        });
    }

    /// <summary>
    /// What float-quantized holds: OCP E4M3 weights per channel or per tensor, activations 16-bit, FP8 per token
    /// (dynamic) or FP8 per tensor (static), no rotation.
    /// </summary>
    public static (QuantSpec Weights, QuantSpec? Activations) CheckFp8(QuantizationConfig c)
    {
        const string format = "compressed-tensors-fp8 export";
        if (c.Weights is not { Format: QuantFormat.Fp8, GroupSize: QuantSpec.PerChannel or QuantSpec.PerTensor } w)
            throw new QuantSharpException($"{format}: holds FP8 weights with one scale per channel or per tensor (--format fp8 --w-bits 8 --w-group-size -1|0); " +
                                          $"this model's weights are {c.Weights?.FormatName ?? "16-bit"}{(c.Weights is { } x ? $" group size {x.GroupSize}" : "")}.");
        if (w.Fp8Variant != Formats.E4M3Variant.Ocp || c.Activations is { Fp8Variant: not Formats.E4M3Variant.Ocp })
            throw new QuantSharpException($"{format}: vLLM reads OCP float8_e4m3fn only; quantize without --fp8-variant gaudi.");
        if (c.Activations is { } a && !(a.Format == QuantFormat.Fp8 && a.GroupSize is QuantSpec.PerChannel or QuantSpec.PerTensor))
            throw new QuantSharpException($"{format}: activations must be FP8 per token (--a-group-size -1) or per tensor (0), or 16-bit; this model has {a.FormatName} group size {a.GroupSize}.");
        if (c.Transform != TransformKind.Identity)
            throw new QuantSharpException($"{format}: cannot carry the {c.Transform.Name()} rotation; quantize without --transform.");
        return (w, c.Activations);
    }

    private static IEnumerable<ExportTensor> Fp8Tensors(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears, QuantSpec w, QuantSpec? a)
    {
        var byWeight = linears.ToDictionary(l => l.Prefix + ".weight");
        foreach (var (name, p) in result.Model.StateDict())
        {
            if (!byWeight.TryGetValue(name, out var lin))
            {
                yield return new ExportTensor(name, p);
                continue;
            }
            using var scope = NewDisposeScope();
            yield return new ExportTensor(name, lin.Codes(w), SafeDType.F8_E4M3);
            Tensor scale = lin.Params.Scale.to(float32).cpu();
            yield return new ExportTensor(lin.Prefix + ".weight_scale", w.GroupSize == QuantSpec.PerTensor ? scale.reshape(1) : scale.reshape(-1, 1));
            if (a is { GroupSize: QuantSpec.PerTensor })
            {
                var input = lin.State.ActivationQuantizers.GetValueOrDefault(lin.Slot)?.GlobalScale
                            ?? throw new QuantSharpException($"tensor '{lin.Prefix}': its static FP8 activation quantizer has no calibrated scale.");
                yield return new ExportTensor(lin.Prefix + ".input_scale", input.to(float32).cpu().reshape(1));
            }
        }
    }

    /// <summary>Writes the folder; returns warnings (e.g. unfused global scales, which vLLM's fused kernels assume equal).</summary>
    public static IReadOnlyList<string> Write(QuantizationResult result, string outDir, bool nvfp4, bool overwrite = false, string outFlag = "--out")
    {
        var c = result.Config;
        var (spec, warnings) = Check(c, nvfp4);
        var linears = QuantizedLinear.All(result, nvfp4 ? "compressed-tensors-nvfp4" : "compressed-tensors");
        var model = result.Model;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            ExportFolder.WriteTensors(tmp, nvfp4 ? NvFp4Tensors(result, linears, spec) : IntTensors(result, linears, spec));
            ExportFolder.WriteConfig(tmp, model, Config(spec, nvfp4 ? c.Activations : null, nvfp4 ? NvFp4Format : PackQuantizedFormat));
            ExportFolder.CopyTokenizer(tmp, model);
        });
        return warnings;
    }

    /// <summary>The run settings the format can hold; returns the weight spec and warnings about consumers.</summary>
    public static (QuantSpec Spec, List<string> Warnings) Check(QuantizationConfig c, bool nvfp4)
    {
        string format = nvfp4 ? "compressed-tensors-nvfp4" : "compressed-tensors";
        var warnings = new List<string>();
        QuantSpec spec;
        if (nvfp4)
        {
            spec = c.Weights is { Format: QuantFormat.NvFp } w ? w
                : throw new QuantSharpException($"{format} export: holds NVFP4 weights only; this model's weights are {c.Weights?.FormatName ?? "16-bit"}.");
            if (c.Activations is not null && c.Activations.Format != QuantFormat.NvFp)
                throw new QuantSharpException($"{format} export: activations must be NVFP4 or 16-bit; this model has {c.Activations.FormatName}.");
            if (c.Transform != TransformKind.Identity)
                throw new QuantSharpException($"{format} export: cannot carry the {c.Transform.Name()} rotation this model was quantized with; " +
                                              "use --to fp-quant (which stores the rotation) or quantize without --transform.");
            if (!c.FuseGlobalScale)
                warnings.Add("NVFP4 weight global scales are per linear; vLLM's fused q/k/v and gate/up kernels take one of them: quantize with --fuse-global-scale for a vLLM-exact checkpoint.");
        }
        else spec = IntLinearCodes.CheckWeightOnly(c, format, 4, 8);
        return (spec, warnings);
    }

    private static JsonObject Config(QuantSpec w, QuantSpec? a, string format)
    {
        return new JsonObject
        {
            ["quant_method"] = QuantMethod,
            ["format"] = format,
            ["quantization_status"] = "compressed",
            ["config_groups"] = new JsonObject
            {
                ["group_0"] = new JsonObject
                {
                    ["targets"] = new JsonArray("Linear"),
                    ["weights"] = Args(w, dynamic: false),
                    ["input_activations"] = a is null ? null : Args(a, dynamic: true),
                    ["output_activations"] = null,
                    ["format"] = format,
                },
            },
            ["ignore"] = new JsonArray("lm_head"),
            ["kv_cache_scheme"] = null,
        };
    }

    private static JsonObject Args(QuantSpec s, bool dynamic)
    {
        bool fp4 = s.Format == QuantFormat.NvFp, fp8 = s.Format == QuantFormat.Fp8;
        string strategy = fp4 ? "tensor_group" : s.GroupSize > 0 ? "group" : s.GroupSize == QuantSpec.PerTensor ? "tensor"
            : dynamic ? "token" : "channel";
        // Static per-tensor FP8 activations carry a calibrated input_scale.
        if (fp8 && s.GroupSize == QuantSpec.PerTensor) dynamic = false;
        return new JsonObject
        {
            ["num_bits"] = s.Bits,
            ["type"] = fp4 || fp8 ? "float" : "int",
            ["symmetric"] = s.Symmetric,
            ["strategy"] = strategy,
            ["group_size"] = s.GroupSize > 0 ? s.GroupSize : null,
            // NVFP4 activations: scales per group computed at run time ("local"), global scale static.
            ["dynamic"] = dynamic ? (fp4 ? "local" : true) : false,
            ["actorder"] = null,
            ["observer"] = dynamic && fp8 ? null : "minmax",
            ["block_structure"] = null,
        };
    }

    private static IEnumerable<ExportTensor> NvFp4Tensors(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears, QuantSpec spec)
    {
        var byWeight = linears.ToDictionary(l => l.Prefix + ".weight");
        bool a4 = result.Config.Activations is not null;
        foreach (var (name, p) in result.Model.StateDict())
        {
            if (!byWeight.TryGetValue(name, out var lin))
            {
                yield return new ExportTensor(name, p);
                continue;
            }
            using var scope = NewDisposeScope();
            Tensor codes = lin.Codes(spec);
            yield return new ExportTensor(lin.Prefix + ".weight_packed", BitPacking.PackNibbles(codes));
            yield return new ExportTensor(lin.Prefix + ".weight_scale", lin.Params.ScaleBytes!.cpu(), SafeDType.F8_E4M3);
            yield return new ExportTensor(lin.Prefix + ".weight_global_scale", lin.Params.GlobalScale!.to(float32).cpu().reshape(1));
            if (a4)
            {
                var gs = lin.State.ActivationQuantizers.GetValueOrDefault(lin.Slot)?.GlobalScale
                         ?? throw new QuantSharpException($"tensor '{lin.Prefix}': its NVFP4 activation quantizer has no calibrated global scale.");
                yield return new ExportTensor(lin.Prefix + ".input_global_scale", gs.to(float32).cpu().reshape(1));
            }
        }
    }

    private static IEnumerable<ExportTensor> IntTensors(QuantizationResult result, IReadOnlyList<QuantizedLinear> linears, QuantSpec spec) =>
        IntLinearCodes.WithPackedLinears(result, linears, spec, (lin, c) => IntLinearTensors(lin, c, spec, result.Model.DType));

    private static IEnumerable<ExportTensor> IntLinearTensors(QuantizedLinear lin, IntLinearCodes c, QuantSpec spec, ScalarType dtype)
    {
        yield return new ExportTensor(lin.Prefix + ".weight_packed", BitPacking.PackInt32(c.Codes, spec.Bits, dim: 1));
        yield return new ExportTensor(lin.Prefix + ".weight_scale", c.Scales.to(dtype));
        if (!spec.Symmetric)
            yield return new ExportTensor(lin.Prefix + ".weight_zero_point", BitPacking.PackInt32(c.Zeros, spec.Bits, dim: 0));
        yield return new ExportTensor(lin.Prefix + ".weight_shape",
            tensor(new[] { (int)lin.Module.OutFeatures, (int)lin.Module.InFeatures }));
    }
}
