using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// Writes a fake-quantized model as a Hugging Face checkpoint of dequantized weights.
/// Weight-only (A16) models are written as plain checkpoints: every rotation is unfolded back into the quantized
/// weight (W = Q·Mᵀ, exact), so transformers and <c>quantsharp eval</c> load them as ordinary models.
/// With activation quantization the rotations must stay online (activations are quantized in the rotated basis):
/// the rotated weights are written, and config.json's <c>quantization_config</c> records the rotations and the
/// activation format, with each calibrated NVFP activation global scale stored as a tensor
/// (<c>model.layers.N.&lt;slot&gt;.act_global_scale</c>), so <c>quantsharp eval</c> rebuilds the same W4A4 model.
/// </summary>
public static class PseudoQuantExporter
{
    public const string QuantMethod = "quantsharp_pseudoquant";

    /// <summary>
    /// Side file with each linear's quantization parameters (<c>&lt;linear&gt;.scale</c>, <c>.zero</c>,
    /// <c>.scale_bytes</c>, <c>.global_scale</c>), so <c>quantsharp export</c> can re-derive the exact codes from the
    /// dequantized weights. Loaders of the checkpoint itself ignore it.
    /// </summary>
    public const string WeightParamsFile = "quantsharp_weight_params.safetensors";

    public static void Write(QuantizationResult result, string outDir, bool overwrite = false)
    {
        var model = result.Model;
        var config = result.Config;
        bool online = config.Activations is not null;
        // Atomic from the reader's side: the folder appears complete or not at all.
        ExportFolder.Write(outDir, overwrite, "--save", tmp =>
        {
            SafetensorsWriter.WriteSharded(tmp, Tensors(result, online), 2L << 30);
            if (result.Layers.Any(l => l.WeightParams.Count > 0))
                SafetensorsWriter.Write(Path.Combine(tmp, WeightParamsFile), WeightParamTensors(result));
            var cfg = (JsonObject)model.Config.Raw.DeepClone();
            cfg["dtype"] = DTypeName(model.DType);
            cfg.Remove("torch_dtype");
            cfg["quantization_config"] = QuantizationConfigJson(config, online);
            File.WriteAllText(Path.Combine(tmp, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            if (model.SourceDirectory is { } src)
            {
                foreach (string f in ExportFolder.TokenizerFiles)
                    if (File.Exists(Path.Combine(src, f))) File.Copy(Path.Combine(src, f), Path.Combine(tmp, f));
            }
        });
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> Tensors(QuantizationResult result, bool online)
    {
        var model = result.Model;
        var states = result.Layers.ToDictionary(s => s.Index);
        foreach (var (name, p) in model.StateDict())
        {
            Tensor value = p;
            if (!online && TryLinear(name, out int layer, out string linear) && states.TryGetValue(layer, out var st)
                && st.Transforms.TryGetValue(LayerwiseQuantizer.SlotOf(linear), out var t))
            {
                value = t.UnfoldFromWeight(p.detach());
            }
            yield return new(name, value.detach().cpu());
        }
        if (!online) yield break;
        foreach (var st in result.Layers)
            foreach (var (slot, act) in st.ActivationQuantizers)
                if (act.GlobalScale is { } gs)
                    yield return new($"model.layers.{st.Index}.{slot}.act_global_scale", gs.to(float32).cpu());
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> WeightParamTensors(QuantizationResult result)
    {
        foreach (var st in result.Layers)
            foreach (var (linear, p) in st.WeightParams)
            {
                string prefix = $"model.layers.{st.Index}.{linear}";
                yield return new(prefix + ".scale", p.Scale.cpu());
                if (p.Zero is { } z) yield return new(prefix + ".zero", z.cpu());
                if (p.ScaleBytes is { } b) yield return new(prefix + ".scale_bytes", b.cpu());
                if (p.GlobalScale is { } g) yield return new(prefix + ".global_scale", g.to(float32).cpu());
                if (p.DoubleQuant is { } dq)
                {
                    // Double-quantized scales: scale = scale_codes · scale_scales[k / group] (+ scale_mean).
                    yield return new(prefix + ".scale_codes", dq.Codes.cpu());
                    yield return new(prefix + ".scale_scales", dq.Scales.cpu());
                    if (dq.Mean is { } m) yield return new(prefix + ".scale_mean", m.cpu());
                }
            }
    }

    private static bool TryLinear(string tensorName, out int layer, out string linear)
    {
        layer = -1;
        linear = "";
        var parts = tensorName.Split('.');
        // model.layers.N.(self_attn|mlp).X_proj.weight
        if (parts.Length != 6 || parts[0] != "model" || parts[1] != "layers" || parts[5] != "weight") return false;
        if (!int.TryParse(parts[2], out layer)) return false;
        linear = parts[3] + "." + parts[4];
        return linear is "self_attn.q_proj" or "self_attn.k_proj" or "self_attn.v_proj" or "self_attn.o_proj"
            or "mlp.gate_proj" or "mlp.up_proj" or "mlp.down_proj";
    }

    private static JsonObject QuantizationConfigJson(QuantizationConfig c, bool online)
    {
        var o = new JsonObject
        {
            ["quant_method"] = QuantMethod,
            ["method"] = c.Method.ToString().ToLowerInvariant(),
            ["weights"] = c.Weights is null ? null : SpecJson(c.Weights),
            ["activations"] = c.Activations is null ? null : SpecJson(c.Activations),
            ["online_transforms"] = online && c.Transform != TransformKind.Identity,
            ["transform"] = new JsonObject
            {
                ["kind"] = c.Transform.Name(),
                ["group_size"] = c.TransformGroupSize,
                ["random_signs"] = c.TransformRandomSigns,
                ["seed"] = c.TransformSeed,
                ["folded_into_weights"] = !online,
            },
        };
        return o;
    }

    private static JsonObject SpecJson(QuantSpec s) => new()
    {
        ["format"] = s.FormatName,
        ["bits"] = s.Bits,
        ["group_size"] = s.GroupSize,
        ["symmetric"] = s.Symmetric,
        ["observer"] = s.Observer.ToString().ToLowerInvariant(),
        ["mx_scale_rule"] = s.MxRule.ToString().ToLowerInvariant(),
        ["full_range"] = s.FullRange,
        ["group_dim"] = s.GroupDim,
        ["double_quant"] = s.DoubleQuant is { } dq
            ? new JsonObject { ["bits"] = dq.Bits, ["symmetric"] = dq.Symmetric, ["group_size"] = dq.GroupSize }
            : null,
    };

    internal static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => "float32",
    };
}
