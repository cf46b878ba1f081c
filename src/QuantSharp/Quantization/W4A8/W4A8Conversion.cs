using System.Text.Json.Nodes;
using QuantSharp.Formats;
using QuantSharp.Models;
using QuantSharp.Models.Packed;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Quantization.W4A8;

/// <summary>
/// INC's hybrid W4A8 inference (HybridGPTQConfig): an INT4 model runs with its weights dequantized to FP8 and its
/// activations quantized to FP8 per tensor with power-of-two scales from a measurement, the products accumulated in
/// float32. TorchSharp has no FP8 matmul, so both operands are kept as float32 values that are exact FP8 values times a
/// power of two: a float32 product of two E4M3 values is exact (4 + 4 significant bits), so the float32 matmul is what
/// FP8 hardware with a float32 accumulator computes, up to the order of the sums.
/// </summary>
public static class W4A8Conversion
{
    /// <summary>
    /// Throws unless every decoder linear of the model folder is stored as 4-bit INT in QuantSharp's packed format;
    /// the message names the first tensor that is not. Returns the FP8 variant FP8-aware weights were made for (OCP otherwise).
    /// </summary>
    public static E4M3Variant RequireFourBitInt(string dir, CausalLM model)
    {
        string first = $"model.layers.0.{model.Layers[0].Linears().First().Name}";
        using var packed = PackedCheckpoint.TryOpen(dir);
        if (packed is not QuantSharpCheckpoint qs)
            throw new QuantSharpException($"--w4a8: {dir} is not a 4-bit INT model in QuantSharp's format: tensor '{first}.weight' is " +
                                          $"{(packed is null ? "a float weight" : $"stored as {packed.Config["quant_method"]}")}; quantize with --format int --w-bits 4 --export quantsharp.");
        var variants = new HashSet<E4M3Variant>();
        var layers = qs.QConfig["layers"] as JsonObject;
        foreach (var layer in model.Layers)
            foreach (var (name, _) in layer.Linears())
            {
                string full = $"model.layers.{layer.Index}.{name}";
                var storage = layers?[full]?["storage"] as JsonObject;
                string format = storage?["format"]?.GetValue<string>() ?? "float";
                int bits = storage?["bits"]?.GetValue<int>() ?? 16;
                if (format != "int" || bits != 4)
                    throw new QuantSharpException($"--w4a8: tensor '{full}' is stored as {(storage is null ? "a float weight" : $"{bits}-bit {format}")}, " +
                                                  "not 4-bit int; W4A8 converts INT4 weights to FP8.");
                if (storage!["fp8_aware"]?.GetValue<bool>() == true)
                    variants.Add(E4M3Variants.Parse(storage["fp8_variant"]?.GetValue<string>() ?? "ocp", $"{full}: storage.fp8_variant"));
            }
        if (variants.Count > 1) throw new QuantSharpException($"--w4a8: {dir} mixes FP8-aware variants ({string.Join(", ", variants)}).");
        return variants.Count == 1 ? variants.First() : E4M3Variant.Ocp;
    }

    /// <summary>
    /// Converts the loaded model in place: each decoder weight W becomes s_w · E4M3(W / s_w) with
    /// s_w = 2^ceil(log2(max|W| / F)) (the identity for FP8-aware weights, already FP8 values times s8), and each
    /// linear input is quantized to E4M3 with s_a = 2^ceil(log2(absmax / F)) from <paramref name="measurement"/>. The
    /// returned states hold the activation quantizers (attached).
    /// </summary>
    public static List<LayerQuantState> Convert(CausalLM model, ActivationMeasurement measurement, E4M3Variant variant, string measurePath)
    {
        measurement.CheckMatches(model, measurePath);
        var e4m3 = MiniFloatFormat.E4M3Of(variant);
        var states = new List<LayerQuantState>();
        try
        {
            foreach (var layer in model.Layers)
            {
                var state = new LayerQuantState(layer.Index);
                states.Add(state);
                var slotMax = new Dictionary<string, float>();
                foreach (var (name, linear) in layer.Linears())
                {
                    using var scope = NewDisposeScope();
                    Tensor w = linear.Weight.detach().to(ScalarType.Float32);
                    Tensor sw = Fp8AwareScaling.Pow2Ceil(w.abs().max().div(e4m3.MaxFinite).clamp_min(float.Epsilon).reshape(1));
                    linear.SetWeight(e4m3.Round(w.div(sw)).mul_(sw).to(linear.Weight.dtype));
                    string slot = LayerwiseQuantizer.SlotOf(name);
                    float absMax = measurement.Linears[$"model.layers.{layer.Index}.{name}"].InputAbsMax;
                    slotMax[slot] = Math.Max(slotMax.GetValueOrDefault(slot), absMax);
                }
                // q/k/v (gate/up) read one input, so their measured maxima are equal; the largest is taken regardless.
                foreach (var (slot, absMax) in slotMax)
                {
                    using var scope = NewDisposeScope();
                    Tensor sa = Fp8AwareScaling.Pow2Ceil(tensor(new[] { Math.Max(absMax, float.Epsilon) / e4m3.MaxFinite }));
                    state.ActivationQuantizers[slot] = new ActivationQuantizerHook(QuantSpec.Fp8(QuantSpec.PerTensor, variant), sa);
                }
                state.Attach(layer);
            }
            return states;
        }
        catch
        {
            foreach (var s in states) s.Dispose();
            throw;
        }
    }
}
