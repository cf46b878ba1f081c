using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// QuantSharp's own packed weight-only format (docs/quantsharp-format.md): every quantized linear — any format,
/// any bit width 1 … 8, per-linear configurations mixed freely, lm_head included — stored as packed codes plus the
/// exact parameters it was quantized with, and qconfig.json with the configuration each linear resolved to. It loads
/// back (<see cref="Models.Packed.QuantSharpCheckpoint"/>) to bit-identical weights without the original model.
/// </summary>
public static class QuantSharpExporter
{
    public const string QuantMethod = "quantsharp";
    public const string QConfigFile = "qconfig.json";
    public const int FormatVersion = 1;

    /// <summary>Throws when the run cannot be stored: online rotations and activation quantization need pseudoquant.</summary>
    public static void Check(QuantizationConfig c)
    {
        if (c.Activations is not null)
            throw new QuantSharpException($"quantsharp export: a weight-only format; this model also quantizes activations " +
                                          $"({c.Activations.FormatName}{c.Activations.Bits}); export pseudoquant or fp-quant instead.");
        if (c.Transform != TransformKind.Identity)
            throw new QuantSharpException($"quantsharp export: cannot hold the {c.Transform.Name()} rotation; quantize without --transform or export pseudoquant.");
        if (!c.QuantizesWeights)
            throw new QuantSharpException("quantsharp export: the model has no quantized weights.");
    }

    /// <param name="recipe">The INC-style recipe the run used (written into qconfig.json), or null.</param>
    /// <param name="layerConfigs">Per linear, the INC configuration (qconfig.json's "config"); null derives it from the spec.</param>
    public static void Write(QuantizationResult result, string outDir, bool overwrite = false, string outFlag = "--out",
        JsonNode? recipe = null, IReadOnlyDictionary<string, JsonObject>? layerConfigs = null)
    {
        Check(result.Config);
        var linears = Linears(result);
        var model = result.Model;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            var layers = new JsonObject();
            ExportFolder.WriteTensors(tmp, Tensors(result, linears, layers, layerConfigs));
            WriteMetadata(tmp, model.Config, model.DType, model.SourceDirectory, Api.LinearNames.Of(model.Config), layers,
                recipe, layerConfigs, headUntied: model.LmHead is not null && model.Config.TieWordEmbeddings);
        });
    }

    /// <summary>
    /// qconfig.json (the float linears appended to <paramref name="layers"/> in model order), config.json and the
    /// tokenizer files: everything but the tensors, shared by the in-memory writer and the low-memory streaming mode.
    /// </summary>
    /// <param name="headUntied">A tied model whose lm_head was quantized now has its own output projection.</param>
    internal static void WriteMetadata(string dir, ModelConfig config, ScalarType dtype, string? sourceDirectory,
        IReadOnlyList<string> linearNames, JsonObject layers, JsonNode? recipe, IReadOnlyDictionary<string, JsonObject>? layerConfigs,
        bool headUntied)
    {
        foreach (var name in linearNames.Where(n => !layers.ContainsKey(n)))
            layers[name] = new JsonObject { ["algorithm"] = null, ["config"] = layerConfigs?.GetValueOrDefault(name)?.DeepClone() ?? new JsonObject { ["dtype"] = "fp32" } };
        var qconfig = new JsonObject
        {
            ["format"] = QuantMethod,
            ["format_version"] = FormatVersion,
            ["recipe"] = recipe?.DeepClone(),
            ["layers"] = layers,
        };
        File.WriteAllText(Path.Combine(dir, QConfigFile), qconfig.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        ExportFolder.WriteConfig(dir, config, dtype, new JsonObject
        {
            ["quant_method"] = QuantMethod,
            ["format_version"] = FormatVersion,
            ["qconfig"] = QConfigFile,
        });
        if (headUntied)
        {
            string path = Path.Combine(dir, "config.json");
            var cfg = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            cfg["tie_word_embeddings"] = false;
            File.WriteAllText(path, cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        ExportFolder.CopyTokenizer(dir, sourceDirectory);
    }

    /// <summary>One quantized linear: full name, module, parameters, and the weight spec it was quantized with.</summary>
    /// <param name="Weight">The quantized weight as the model holds it (model dtype, [out, in]).</param>
    internal sealed record Packed(string Name, Tensor Weight, GroupParams Params, QuantSpec Spec, QuantizationConfig Config);

    private static Dictionary<string, Packed> Linears(QuantizationResult result)
    {
        var list = new Dictionary<string, Packed>();
        var states = result.Layers.ToDictionary(s => s.Index);
        foreach (var layer in result.Model.Layers)
        {
            if (!states.TryGetValue(layer.Index, out var st)) continue;
            foreach (var (name, module) in layer.Linears())
            {
                string full = $"model.layers.{layer.Index}.{name}";
                var c = result.Config.For(full);
                if (st.WeightParams.TryGetValue(name, out var p) && c.Weights is { } spec) list[full] = new Packed(full, module.Weight, p, spec, c);
            }
        }
        if (result.LmHeadParams is { } head && result.Model.LmHead is { } headModule
            && result.Config.For(OutputHeadQuantizer.Name).Weights is { } headSpec)
            list[OutputHeadQuantizer.Name] = new Packed(OutputHeadQuantizer.Name, headModule.Weight, head, headSpec, result.Config.For(OutputHeadQuantizer.Name));
        return list;
    }

    private static IEnumerable<ExportTensor> Tensors(QuantizationResult result, Dictionary<string, Packed> linears, JsonObject layers,
        IReadOnlyDictionary<string, JsonObject>? layerConfigs)
    {
        foreach (var (name, p) in result.Model.StateDict())
        {
            string prefix = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : "";
            if (!linears.TryGetValue(prefix, out var lin))
            {
                yield return new ExportTensor(name, p);
                continue;
            }
            using var scope = NewDisposeScope();
            foreach (var t in PackInto(lin, layers, layerConfigs)) yield return t;
        }
    }

    /// <summary>Packs one linear and records its qconfig.json entry in <paramref name="layers"/>.</summary>
    internal static List<ExportTensor> PackInto(Packed lin, JsonObject layers, IReadOnlyDictionary<string, JsonObject>? layerConfigs)
    {
        var (tensors, storage) = Pack(lin);
        layers[lin.Name] = new JsonObject
        {
            ["algorithm"] = lin.Config.Method.ToString().ToLowerInvariant(),
            ["config"] = layerConfigs?.GetValueOrDefault(lin.Name)?.DeepClone() ?? IncConfigOf(lin.Config),
            ["storage"] = storage,
        };
        return tensors;
    }

    /// <summary>Packed codes and parameters of one linear, and the storage description the reader needs.</summary>
    private static (List<ExportTensor> Tensors, JsonObject Storage) Pack(Packed lin)
    {
        var spec = lin.Spec;
        using var p = QuantizedLinear.OnCpu(lin.Params);
        // group_dim 0: the parameters describe Wᵀ (groups along the output dimension), so the codes are Wᵀ's.
        Tensor w = lin.Weight.detach().cpu();
        Tensor target = spec.GroupDim == 0 ? w.t().contiguous() : w;
        var quantizer = WeightQuantizer.Create(spec);
        Tensor codes = quantizer.Codes(target, p);
        Tensor back = quantizer.Dequantize(codes, p).to(w.dtype);
        if (!back.eq(target).all().item<bool>())
            throw new QuantSharpException($"tensor '{lin.Name}.weight': its recorded {spec.FormatName} parameters do not reproduce the weight exactly " +
                                          $"(max difference {back.to(float32).sub(target.to(float32)).abs().max().item<float>():E3}); it cannot be stored as codes.");
        bool signed = codes.dtype == ScalarType.Int8;
        long offset = signed ? 1L << (spec.Bits - 1) : 0;
        Tensor unsigned = codes.to(ScalarType.Int64).add(offset);
        long rows = lin.Weight.shape[0], columns = lin.Weight.shape[1];
        var tensors = new List<ExportTensor>
        {
            new(lin.Name + ".qweight", CodeWords.Pack(unsigned, spec.Bits)),
            new(lin.Name + ".scales", p.Scale.to(float32).contiguous()),
        };
        if (spec.GroupDim == 1)
            tensors.Add(new(lin.Name + ".g_idx", arange(columns, ScalarType.Int64).div(p.GroupSize, RoundingMode.floor).to(ScalarType.Int32)));
        if (p.Zero is { } zero)
        {
            // Integer zero points (INT asymmetric) pack into bytes; anything else (HQQ's float zeros) stays float32.
            bool integral = zero.eq(zero.round()).all().item<bool>() && zero.ge(0).all().item<bool>() && zero.le(255).all().item<bool>();
            tensors.Add(integral ? new(lin.Name + ".qzeros", zero.to(ScalarType.Byte)) : new(lin.Name + ".zeros", zero.to(float32).contiguous()));
        }
        if (p.ScaleBytes is { } bytes) tensors.Add(new(lin.Name + ".scale_bytes", bytes.to(ScalarType.Byte).contiguous()));
        if (p.GlobalScale is { } global) tensors.Add(new(lin.Name + ".global_scale", global.to(float32).reshape(1)));
        // Double quantization: the scales' own codes and second-level scales (the float32 scales above are their
        // dequantized values, so a reader may use either).
        if (lin.Params.DoubleQuant is { } dq)
        {
            tensors.Add(new(lin.Name + ".scale_codes", dq.Codes.cpu().to(ScalarType.Int8).contiguous()));
            tensors.Add(new(lin.Name + ".scale_scales", dq.Scales.cpu().to(float32).contiguous()));
            if (dq.Mean is { } mean) tensors.Add(new(lin.Name + ".scale_mean", mean.cpu().to(float32).reshape(1)));
        }
        // The tensors stay in the caller's dispose scope, which ends only after they are written (moving them out of it
        // left every packed linear to the finalizer, i.e. the whole packed model alive in native memory until a GC).
        var storage = new JsonObject
        {
            ["format"] = spec.FormatName,
            ["bits"] = spec.Bits,
            ["group_size"] = spec.GroupSize,
            ["group_dim"] = spec.GroupDim,
            ["symmetric"] = spec.Symmetric,
            ["symmetric_rule"] = spec.SymmetricRule.ToString().ToLowerInvariant(),
            ["full_range"] = spec.FullRange,
            ["observer"] = spec.Observer.ToString().ToLowerInvariant(),
            ["mx_scale_rule"] = spec.MxRule.ToString().ToLowerInvariant(),
            // FP8-aware INT: values are s8 · E4M3(clamp((code − zero) · scale, ±R)), s8 in global_scale.
            ["fp8_aware"] = spec.Fp8Aware,
            ["fp8_variant"] = spec.Format is QuantFormat.Fp8 || spec.Fp8Aware ? Formats.E4M3Variants.Name(spec.Fp8Variant) : null,
            ["double_quant"] = lin.Params.DoubleQuant is { } d
                ? new JsonObject { ["bits"] = d.Bits, ["group_size"] = d.GroupSize, ["symmetric"] = d.Mean is null }
                : null,
            ["code_dtype"] = signed ? "int8" : "uint8",
            ["code_offset"] = offset,
            ["codes_per_word"] = CodeWords.PerWord(spec.Bits),
            ["shape"] = new JsonArray(rows, columns),
        };
        return (tensors, storage);
    }

    /// <summary>INC-style arguments of a run configured with flags rather than a recipe.</summary>
    private static JsonObject IncConfigOf(QuantizationConfig c)
    {
        var w = c.Weights!;
        var o = new JsonObject
        {
            ["dtype"] = w.Format == QuantFormat.Int ? "int" : w.FormatName,
            ["bits"] = w.Bits,
            ["group_size"] = w.GroupSize > 0 ? w.GroupSize : -1,
            ["use_sym"] = w.Symmetric,
        };
        if (c.Method == Quantization.QuantMethod.Gptq)
        {
            o["act_order"] = c.Gptq.ActOrder;
            o["hybrid_order"] = c.Gptq.GroupAwareReorder;
            o["percdamp"] = c.Gptq.RelDamp;
            o["block_size"] = c.Gptq.BlockSize;
            o["static_groups"] = c.Gptq.StaticGroups;
            o["true_sequential"] = c.TrueSequential;
            o["use_mse_search"] = w.Observer == ObserverKind.Mse;
            if (w.Fp8Aware) o["fp8_aware"] = true;
        }
        return o;
    }
}
