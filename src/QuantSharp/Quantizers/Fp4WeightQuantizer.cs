using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// E2M1 elements with the scale rule of the format: FP (float32 absmax/6), MXFP4 (E8M0, <see cref="MxFp4Scales"/>)
/// or NVFP4 (E4M3 + global, <see cref="NvFp4Scales"/>). The unrounded scale is absmax/6 in every case.
/// </summary>
public sealed class Fp4WeightQuantizer : WeightQuantizer
{
    internal Fp4WeightQuantizer(QuantSpec spec, string flagPrefix) : base(spec, flagPrefix) { }

    public override ElementGrid Grid => Fp4.Format.MagnitudeGrid();

    public override Tensor? ComputeGlobalScale(Tensor w) =>
        Spec.Format == QuantFormat.NvFp ? NvFp4Scales.GlobalScaleOf(w) : null;

    protected override (Tensor Scale, Tensor? Zero) RawParams(Tensor min, Tensor max) =>
        (AbsMax(min, max).div(Fp4.MaxMagnitude), null);

    protected override Tensor ToGrid(Tensor x, Tensor scale, Tensor? zero)
    {
        using var scope = NewDisposeScope();
        return Fp4.Format.Round(x.div(scale)).MoveToOuterDisposeScope();
    }

    protected override Tensor FromGrid(Tensor q, Tensor scale, Tensor? zero) => q.mul(scale);

    protected override Tensor EncodeGrid(Tensor q) => Fp4.Format.EncodeRounded(q);

    protected override Tensor DecodeGrid(Tensor codes) => Fp4.Format.Decode(codes);

    protected override GroupParams Finalize(Tensor rawScale, Tensor? zero, Tensor? globalScale, int groupSize, int columns)
    {
        switch (Spec.Format)
        {
            case QuantFormat.MxFp:
            {
                var (effective, bytes) = MxFp4Scales.FromRawScale(rawScale, Spec.MxRule);
                Tensor global = torch.tensor(new[] { MxFp4Scales.GlobalScaleOf(Spec.MxRule) }, device: rawScale.device);
                return new GroupParams(effective, null, bytes, global, groupSize, columns);
            }
            case QuantFormat.NvFp:
            {
                Tensor global = (globalScale ?? throw new InvalidOperationException("NVFP4 needs a global scale")).clone();
                var (effective, bytes) = NvFp4Scales.FromRawScale(rawScale, global);
                return new GroupParams(effective, null, bytes, global, groupSize, columns);
            }
            default:
            {
                Tensor scale = NonZeroScale(rawScale);
                return new GroupParams(scale, null, null, null, groupSize, columns);
            }
        }
    }
}
