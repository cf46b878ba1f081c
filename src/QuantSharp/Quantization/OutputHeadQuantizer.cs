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
        // group_dim 0: groups along the output dimension, i.e. the parameters describe Wᵀ.
        Tensor target = spec.GroupDim == 0 ? w.t().contiguous() : w;
        GroupParams p = quantizer.ComputeParams(target, null, Name);
        Tensor dq = quantizer.QuantizeDequantize(target, p);
        if (spec.GroupDim == 0) dq = dq.t().contiguous();
        result.Reports.Add(new LayerQuantReport(Name, QuantError.Relative(w, dq, null), false, null));
        result.LmHeadParams = p.DetachFromDisposeScope();
        head.ReplaceWeight(dq.to(model.DType).DetachFromDisposeScope());
    }
}
