using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>x → x·(L ⊗ R) at run time (computed in float32, returned in x's dtype). With no right factor R = I.</summary>
public sealed class KroneckerHook(Tensor left, Tensor? right, int rightSize) : IActivationHook
{
    public Tensor Left { get; } = left;
    public Tensor? Right { get; } = right;

    public Tensor Apply(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor x = input.to(ScalarType.Float32);
        Tensor r = Right?.to(x.device) ?? eye(rightSize, dtype: ScalarType.Float32, device: x.device);
        return Kronecker.Apply(x, Left.to(x.device), r).to(input.dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// FlatQuant's per-token activation quantizer at run time: int symmetric (or asymmetric) over each whole row, with
/// the learned LAC ratios shrinking the row's range (the same <see cref="StraightThroughQuant.FakeQuant"/> the
/// calibration trained against).
/// </summary>
public sealed class TokenQuantizerHook(int bits, bool symmetric, Tensor? clipMax, Tensor? clipMin) : IActivationHook
{
    public int Bits { get; } = bits;
    public bool Symmetric { get; } = symmetric;
    public Tensor? ClipMax { get; } = clipMax;
    public Tensor? ClipMin { get; } = clipMin;

    public Tensor Apply(Tensor input) =>
        StraightThroughQuant.FakeQuant(input, Bits, Symmetric, -1, ClipMax?.to(input.device), ClipMin?.to(input.device));
}
