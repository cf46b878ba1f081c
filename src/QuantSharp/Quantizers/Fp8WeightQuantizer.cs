using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>FP8 E4M3 elements (OCP or Gaudi) with a float32 scale absmax/max-finite per group, channel or tensor.</summary>
public sealed class Fp8WeightQuantizer : WeightQuantizer
{
    private readonly MiniFloatFormat _element;

    internal Fp8WeightQuantizer(QuantSpec spec, string flagPrefix) : base(spec, flagPrefix) =>
        _element = MiniFloatFormat.E4M3Of(spec.Fp8Variant);

    public override ElementGrid Grid => _element.MagnitudeGrid();

    protected override (Tensor Scale, Tensor? Zero) RawParams(Tensor min, Tensor max) =>
        (AbsMax(min, max).div(_element.MaxFinite), null);

    protected override Tensor ToGrid(Tensor x, Tensor scale, Tensor? zero)
    {
        using var scope = NewDisposeScope();
        return _element.Round(x.div(scale)).MoveToOuterDisposeScope();
    }

    protected override Tensor FromGrid(Tensor q, Tensor scale, Tensor? zero) => q.mul(scale);

    protected override Tensor EncodeGrid(Tensor q) => _element.EncodeRounded(q);

    protected override Tensor DecodeGrid(Tensor codes) => _element.Decode(codes);

    protected override GroupParams Finalize(Tensor rawScale, Tensor? zero, Tensor? globalScale, int groupSize, int columns)
    {
        Tensor scale = NonZeroScale(rawScale);
        return new GroupParams(scale, null, null, null, groupSize, columns);
    }
}
