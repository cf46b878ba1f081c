using QuantSharp.Models;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// INC's quant_lm_head: the output projection quantized with round-to-nearest using the configuration lm_head
/// resolves to (it never gets GPTQ: its input, the final hidden state, is not captured by the layer-wise pipeline, and
/// INC's GPTQ skips it too). A tied model is untied first, so the embeddings stay float.
/// </summary>
internal static class OutputHeadQuantizer
{
    public const string Name = "lm_head";

    public static void Run(CausalLM model, QuantizationConfig config, QuantizationResult result)
    {
        if (config.PerLinear?.Resolve(Name) is not { Weights: { } spec }) return;
        using var scope = NewDisposeScope();
        var head = model.UntieLmHead();
        var quantizer = WeightQuantizer.Create(spec);
        Tensor w = head.Weight.detach().to(float32);
        var (dq, p) = Quantize(w, spec, quantizer);
        result.Reports.Add(new LayerQuantReport(Name, QuantError.Relative(w, dq, null), false, null));
        result.LmHeadParams = p.DetachFromDisposeScope();
        head.ReplaceWeight(dq.to(model.DType).DetachFromDisposeScope());
    }

    /// <summary>The head's rule: round-to-nearest with its own spec and no shared global scale, whatever the method.</summary>
    public static (Tensor Dequantized, GroupParams Params) Quantize(Tensor w32, QuantSpec spec, IWeightQuantizer quantizer) =>
        DataFreeLinearQuantizer.Quantize(w32, spec, quantizer, hqq: null, globalScale: null, Name);
}
