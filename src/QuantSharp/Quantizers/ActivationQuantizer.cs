using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Dynamic activation quantization: parameters are recomputed for every call, per token (row) and per group of
/// <see cref="QuantSpec.GroupSize"/> along the hidden dimension, with the same element and scale rules as weights.
/// NVFP4 additionally needs a per-tensor global scale, which is calibrated: <see cref="Observe"/> keeps the minimum of
/// 448·6/max|x| over calibration batches and <see cref="Freeze"/> fixes it (FP-Quant tracks it the same way, then stops
/// tracking after calibration). Static per-tensor FP8 (compressed-tensors' FP8 scheme, group size 0) is calibrated the
/// same way: the running maximum of absmax/F over calibration batches becomes the one frozen scale of every call.
/// </summary>
public sealed class ActivationQuantizer : IDisposable
{
    private readonly IWeightQuantizer _rule;
    private Tensor? _globalScale;

    /// <param name="dynamicGlobalScale">NVFP4 only: compute the global scale 448·6/max|x| from each call's input
    /// instead of calibrating it (quantize-on-load has no calibration data).</param>
    public ActivationQuantizer(QuantSpec spec, bool dynamicGlobalScale = false)
    {
        _rule = WeightQuantizer.Create(spec, "--a-");
        DynamicGlobalScale = dynamicGlobalScale && spec.Format == QuantFormat.NvFp;
    }

    /// <summary>NVFP4 with a per-call global scale (no calibration).</summary>
    public bool DynamicGlobalScale { get; }

    public QuantSpec Spec => _rule.Spec;

    /// <summary>True for formats whose global scale comes from calibration (NVFP4, static per-tensor FP8).</summary>
    public bool NeedsCalibration => (Spec.Format == QuantFormat.NvFp && !DynamicGlobalScale) || IsStaticFp8;

    /// <summary>FP8 with one scale per tensor: static, from calibration (per token and per group stay dynamic).</summary>
    public bool IsStaticFp8 => Spec.Format == QuantFormat.Fp8 && Spec.GroupSize == QuantSpec.PerTensor;

    /// <summary>
    /// The running (or frozen) calibrated scale, [1] float32: NVFP4's global scale, or static FP8's scale absmax/F
    /// (compressed-tensors' input_scale); null before the first non-zero observation.
    /// </summary>
    public Tensor? GlobalScale => _globalScale;

    public bool IsFrozen { get; private set; }

    /// <summary>Folds one calibration batch [..., hidden] into the global scale (no-op for formats without one).</summary>
    public void Observe(Tensor batch)
    {
        if (IsFrozen) throw new InvalidOperationException("the activation global scale is frozen; Observe is for calibration only");
        if (!NeedsCalibration) return;
        using var scope = NewDisposeScope();
        if (IsStaticFp8)
        {
            Tensor scale = batch.detach().abs().max().to(ScalarType.Float32).div(MiniFloatFormat.E4M3Of(Spec.Fp8Variant).MaxFinite).reshape(1);
            Tensor largest = _globalScale is null ? scale : torch.maximum(_globalScale, scale.to(_globalScale.device));
            _globalScale?.Dispose();
            _globalScale = largest.DetachFromDisposeScope();
            return;
        }
        // An all-zero batch gives 448·6·(1/0) = +inf, which the running minimum ignores.
        Tensor current = NvFp4Scales.GlobalScaleNumerator * batch.detach().abs().max().to(ScalarType.Float32).reciprocal().reshape(1);
        Tensor next = _globalScale is null ? current : torch.minimum(_globalScale, current.to(_globalScale.device));
        _globalScale?.Dispose();
        _globalScale = next.DetachFromDisposeScope();
    }

    /// <summary>Stops calibration. Throws when NVFP4 saw no non-zero batch.</summary>
    public void Freeze()
    {
        if (NeedsCalibration && (_globalScale is null || !_globalScale.isfinite().all().item<bool>() || (IsStaticFp8 && _globalScale.item<float>() == 0f)))
            throw new QuantSharpException(
                $"activation quantization (format {Spec.FormatName}): no non-zero calibration batch was observed, so the global scale is undefined.");
        IsFrozen = true;
    }

    /// <summary>Sets a previously calibrated global scale and freezes (loading an exported W4A4 model).</summary>
    public void Restore(Tensor globalScale)
    {
        _globalScale?.Dispose();
        _globalScale = globalScale.to(ScalarType.Float32).reshape(1).clone().DetachFromDisposeScope();
        IsFrozen = true;
    }

    /// <summary>Fake-quantizes x [..., hidden] per token and group; returns float32 of x's shape.</summary>
    public Tensor QuantizeDequantize(Tensor x, string? tensorName = null)
    {
        if (NeedsCalibration && _globalScale is null)
            throw new InvalidOperationException($"{Spec.FormatName} activation quantization needs Observe (calibration) before use");
        using var scope = NewDisposeScope();
        long hidden = x.shape[^1];
        Tensor rows = x.reshape(-1, hidden);
        if (IsStaticFp8)
        {
            int columns = checked((int)hidden);
            using var fixedScale = new GroupParams(_globalScale!.to(rows.device).reshape(1, 1), null, null, null, columns, columns);
            return _rule.QuantizeDequantize(rows, fixedScale).reshape(x.shape).MoveToOuterDisposeScope();
        }
        using GroupParams p = _rule.ComputeParams(rows, _globalScale, tensorName ?? "activation");
        return _rule.QuantizeDequantize(rows, p).reshape(x.shape).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _globalScale?.Dispose();
        _globalScale = null;
    }
}
