using QuantSharp.Algorithms.Hqq;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// The data-free quantization of one linear's float32 weight (RTN with any format, observer and INC option, or HQQ):
/// the one rule the layer-wise pipeline, the output head and the low-memory streaming mode all use, so their
/// results are bit-identical.
/// </summary>
internal static class DataFreeLinearQuantizer
{
    /// <summary>
    /// Quantizes <paramref name="w"/> (float32 [out, in]) and returns its fake-quantized float32 weight [out, in] and the
    /// group parameters (which describe Wᵀ when the spec's group_dim is 0, INC's groups along the output dimension).
    /// </summary>
    /// <param name="hqq">HQQ's options when the linear uses HQQ; null for round-to-nearest.</param>
    public static (Tensor Dequantized, GroupParams Params) Quantize(Tensor w, QuantSpec spec, IWeightQuantizer quantizer,
        HqqOptions? hqq, Tensor? globalScale, string fullName)
    {
        using var scope = NewDisposeScope();
        Tensor target = spec.GroupDim == 0 ? w.t().contiguous() : w;
        GroupParams p = hqq is not null
            ? HqqQuantizer.ComputeParams(target, spec, hqq, fullName)
            : quantizer.ComputeParams(target, globalScale, fullName);
        Tensor dq = quantizer.QuantizeDequantize(target, p);
        if (spec.GroupDim == 0) dq = dq.t().contiguous();
        return (dq.MoveToOuterDisposeScope(), p.MoveToOuterDisposeScope());
    }
}
