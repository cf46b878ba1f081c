using System.Text.Json.Nodes;
using QuantSharp.Formats;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// Rebuilds the online part of a pseudoquant export (rotations applied to activations, activation quantizers with
/// their frozen NVFP global scales) from config.json's quantization_config, so an exported W4A4 model evaluates
/// exactly as the in-memory one did.
/// </summary>
public static class OnlineQuantization
{
    /// <summary>Loads a model folder, restoring online quantization when its config asks for it.</summary>
    public static LoadedModel Load(string dir, ScalarType dtype, Device device)
    {
        // Packed exports (fp_quant, gptq, awq, compressed-tensors) dequantize while loading and restore their own state.
        using (var packed = Models.Packed.PackedCheckpoint.TryOpen(dir))
            if (packed is not null) return packed.Load(dtype, device);
        var model = CausalLM.Load(dir, dtype, device);
        try
        {
            return new LoadedModel(model, Restore(model, dir));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public static List<LayerQuantState> Restore(CausalLM model, string dir)
    {
        var states = new List<LayerQuantState>();
        if (model.Config.Raw["quantization_config"] is not JsonObject q) return states;
        string? method = q["quant_method"]?.GetValue<string>();
        if (method != Export.PseudoQuantExporter.QuantMethod) return states;
        string configPath = Path.Combine(dir, "config.json");
        if (q["activations"] is not JsonObject act) return states; // weight-only: a plain model
        var spec = ParseSpec(act, configPath);
        var t = q["transform"] as JsonObject;
        var kind = t is null ? TransformKind.Identity : TransformKinds.Parse(t["kind"]!.GetValue<string>(), "quantization_config.transform.kind");
        int group = t?["group_size"]?.GetValue<int>() ?? 128;
        bool signs = t?["random_signs"]?.GetValue<bool>() ?? false;
        long seed = t?["seed"]?.GetValue<long>() ?? 0;

        using var ckpt = SafetensorsCheckpoint.Open(dir);
        var c = model.Config;
        var widths = new Dictionary<string, int>
        {
            ["qkv"] = c.HiddenSize, ["o"] = c.NumHeads * c.HeadDim, ["gate_up"] = c.HiddenSize, ["down"] = c.IntermediateSize,
        };
        foreach (var layer in model.Layers)
        {
            var st = new LayerQuantState(layer.Index);
            for (int s = 0; s < LayerwiseQuantizer.Slots.Length; s++)
            {
                string slot = LayerwiseQuantizer.Slots[s];
                if (kind != TransformKind.Identity)
                    st.Transforms[slot] = BlockTransform.Create(kind, widths[slot], Math.Min(group, widths[slot]),
                        seed + layer.Index * 4L + s, model.Device, model.DType, signs);
                string gsName = $"model.layers.{layer.Index}.{slot}.act_global_scale";
                Tensor? gs = ckpt.Contains(gsName) ? ckpt.Read(gsName) : null;
                if (spec.Format == QuantFormat.NvFp && gs is null)
                    throw new InvalidFileException(dir, "NVFP activations need a calibrated global scale", gsName);
                st.ActivationQuantizers[slot] = new ActivationQuantizerHook(spec, gs);
                gs?.Dispose();
            }
            st.Attach(layer);
            states.Add(st);
        }
        return states;
    }

    internal static QuantSpec ParseSpec(JsonObject o, string path)
    {
        string format = o["format"]?.GetValue<string>() ?? throw new InvalidFileException(path, "quantization_config.activations.format missing");
        var f = QuantSpec.FormatFromName(format)
            ?? throw new InvalidFileException(path, $"quantization_config.activations.format '{format}' is unknown");
        var rule = (o["mx_scale_rule"]?.GetValue<string>() ?? "fpquant") == "ocp" ? MxScaleRule.Ocp : MxScaleRule.FpQuant;
        var spec = new QuantSpec(f, o["bits"]!.GetValue<int>(), o["group_size"]!.GetValue<int>(),
            o["symmetric"]?.GetValue<bool>() ?? true, ObserverKind.MinMax, rule);
        spec.Validate("--a-");
        return spec;
    }
}

/// <summary>A model plus the online quantization state attached to it; disposing frees both.</summary>
public sealed class LoadedModel(CausalLM model, List<LayerQuantState> online) : IDisposable
{
    public CausalLM Model { get; } = model;
    public IReadOnlyList<LayerQuantState> Online { get; } = online;

    public void Dispose()
    {
        foreach (var s in Online) s.Dispose();
        Model.Dispose();
    }
}
