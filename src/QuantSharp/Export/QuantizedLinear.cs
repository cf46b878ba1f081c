using QuantSharp.Models.Layers;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// One quantized decoder linear of a <see cref="QuantizationResult"/>: its module (whose weight is the fake-quantized
/// weight Q, in the rotated basis when rotations are online), the group parameters quantization used, and the
/// layer state holding its slot's rotation and activation quantizer.
/// </summary>
public sealed record QuantizedLinear(string Prefix, string Linear, string Slot, DecoderLinear Module, GroupParams Params, LayerQuantState State)
{
    /// <summary>Every quantized linear in model order; throws when the result carries no weight parameters.</summary>
    public static IReadOnlyList<QuantizedLinear> All(QuantizationResult result, string format)
    {
        if (result.Config.Weights is null)
            throw new QuantSharpException($"{format} export: the model has unquantized (16-bit) weights; packed formats need quantized weights.");
        var list = new List<QuantizedLinear>();
        var states = result.Layers.ToDictionary(s => s.Index);
        foreach (var layer in result.Model.Layers)
        {
            if (!states.TryGetValue(layer.Index, out var st))
                throw new QuantSharpException($"{format} export: layer {layer.Index} has no quantization state.");
            foreach (var (name, module) in layer.Linears())
            {
                if (!st.WeightParams.TryGetValue(name, out var p))
                    throw new QuantSharpException($"{format} export: model.layers.{layer.Index}.{name} has no recorded quantization parameters.");
                list.Add(new QuantizedLinear($"model.layers.{layer.Index}.{name}", name, LayerwiseQuantizer.SlotOf(name), module, p, st));
            }
        }
        return list;
    }

    /// <summary>
    /// The unpacked codes of Q on the quantizer's grid (see <see cref="IWeightQuantizer.Codes"/>), checked to decode
    /// back to exactly the model's weight, so a packed file never silently differs from the model it came from.
    /// </summary>
    public Tensor Codes(QuantSpec spec)
    {
        using var scope = NewDisposeScope();
        var quantizer = WeightQuantizer.Create(spec);
        Tensor w = Module.Weight.detach().cpu();
        using var p = OnCpu(Params);
        Tensor codes = quantizer.Codes(w, p);
        Tensor back = quantizer.Dequantize(codes, p).to(w.dtype);
        if (!back.eq(w).all().item<bool>())
        {
            double worst = back.to(float32).sub(w.to(float32)).abs().max().item<float>();
            throw new QuantSharpException(
                $"tensor '{Prefix}.weight': its recorded {spec.FormatName} parameters do not reproduce the weight exactly " +
                $"(max difference {worst:E3}); it cannot be re-encoded as codes.");
        }
        return codes.MoveToOuterDisposeScope();
    }

    /// <summary>A CPU copy of the parameters (the caller disposes it).</summary>
    public static GroupParams OnCpu(GroupParams p) => new(p.Scale.cpu().clone(), p.Zero?.cpu().clone(), p.ScaleBytes?.cpu().clone(),
        p.GlobalScale?.cpu().clone(), p.GroupSize, p.Columns);
}
