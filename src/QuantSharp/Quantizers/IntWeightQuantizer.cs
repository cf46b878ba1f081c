using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>Uniform integer quantization (see <see cref="IntGrid"/> for the scale and zero rules).</summary>
public sealed class IntWeightQuantizer : WeightQuantizer
{
    internal IntWeightQuantizer(QuantSpec spec, string flagPrefix) : base(spec, flagPrefix) { }

    public override ElementGrid Grid
    {
        get
        {
            var (min, max) = IntGrid.Range(Spec.Bits, Spec.Symmetric);
            return ElementGrid.Integers(min, max);
        }
    }

    protected override (Tensor Scale, Tensor? Zero) RawParams(Tensor min, Tensor max)
    {
        if (Spec.Symmetric && Spec.FullRange) return (IntGrid.FullRangeScale(min, max, Spec.Bits), null);
        if (Spec.Symmetric && Spec.SymmetricRule == IntSymmetricRule.Inc) return (IntGrid.IncSymmetricScale(AbsMax(min, max), Spec.Bits), null);
        if (Spec.Symmetric) return (IntGrid.SymmetricScale(AbsMax(min, max), Spec.Bits), null);
        Tensor scale = IntGrid.AsymmetricScale(min, max, Spec.Bits);
        return (scale, IntGrid.AsymmetricZero(min, scale, Spec.Bits));
    }

    protected override Tensor ToGrid(Tensor x, Tensor scale, Tensor? zero) => IntGrid.Quantize(x, scale, zero, Spec.Bits, Spec.Symmetric);

    protected override Tensor FromGrid(Tensor q, Tensor scale, Tensor? zero) => IntGrid.Dequantize(q, scale, zero);

    protected override Tensor EncodeGrid(Tensor q) => q.to(Spec.Symmetric ? ScalarType.Int8 : ScalarType.Byte);

    protected override Tensor DecodeGrid(Tensor codes) => codes.to(ScalarType.Float32);

    protected override GroupParams Finalize(Tensor rawScale, Tensor? zero, Tensor? globalScale, int groupSize, int columns)
    {
        Tensor scale = NonZeroScale(rawScale);
        return new GroupParams(scale, zero, null, null, groupSize, columns);
    }
}
