using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Elements from an explicit level table (<see cref="LevelTable"/>: nf4, fp4_e2m1_bnb, fp4_e2m1) with a float32 scale
/// absmax / max(levels) per group, channel or tensor, as Intel Neural Compressor quantizes them.
/// </summary>
public sealed class TableWeightQuantizer : WeightQuantizer
{
    private readonly LevelTable _table;

    internal TableWeightQuantizer(QuantSpec spec, string flagPrefix) : base(spec, flagPrefix) =>
        _table = QuantSpec.TableOf(spec.Format) ?? throw new ArgumentException($"format {spec.FormatName} has no level table", nameof(spec));

    public LevelTable Table => _table;

    public override ElementGrid Grid => ElementGrid.LevelTable(_table.Levels);

    protected override (Tensor Scale, Tensor? Zero) RawParams(Tensor min, Tensor max) =>
        (AbsMax(min, max).div(_table.MaxLevel), null);

    protected override Tensor ToGrid(Tensor x, Tensor scale, Tensor? zero)
    {
        using var scope = NewDisposeScope();
        return _table.Round(x.div(scale)).MoveToOuterDisposeScope();
    }

    protected override Tensor FromGrid(Tensor q, Tensor scale, Tensor? zero) => q.mul(scale);

    protected override Tensor EncodeGrid(Tensor q) => _table.Encode(q);

    protected override Tensor DecodeGrid(Tensor codes) => _table.Decode(codes);

    protected override GroupParams Finalize(Tensor rawScale, Tensor? zero, Tensor? globalScale, int groupSize, int columns)
    {
        Tensor scale = NonZeroScale(rawScale);
        return new GroupParams(scale, null, null, null, groupSize, columns);
    }
}
