using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>
/// The upper Cholesky factor of (H + damp·I)⁻¹ that GPTQ's updates use. When a factorisation fails (H not positive
/// definite in float32) the dampening is multiplied by 10 and retried; every retry is reported, and running out of
/// retries is an error — never a silent fallback to the identity (FP-Quant falls back silently).
/// </summary>
internal static class HessianInverse
{
    /// <summary>U (upper, (H + Damp·I)⁻¹ = UᵀU), the absolute dampening used and how many retries it took.</summary>
    public sealed record Factor(Tensor Upper, double Damp, int Retries);

    /// <summary>Factorises; <paramref name="hessian"/> is not modified.</summary>
    public static Factor Compute(Tensor hessian, double relDamp, int maxRetries, string layerName, Action<string> warn)
    {
        double damp = relDamp * hessian.diagonal().mean().item<float>();
        for (int attempt = 0; attempt <= maxRetries; attempt++)
        {
            Tensor? upper = TryUpperCholeskyOfInverse(hessian, damp);
            if (upper is not null) return new Factor(upper, damp, attempt);
            string message = string.Create(CultureInfo.InvariantCulture,
                $"layer '{layerName}': Cholesky of the dampened Hessian failed with damp {damp:G4} (rel-damp {relDamp * Math.Pow(10, attempt):G4})");
            if (attempt == maxRetries)
                throw new HessianNotPositiveDefiniteException(message + $" after {maxRetries} retries with 10× more dampening each; " +
                    "its Hessian is not positive definite (check the calibration inputs for NaN/huge values, raise --rel-damp, " +
                    "or pass --allow-rtn-fallback to quantize such layers with RTN).");
            damp *= 10;
            warn(message + string.Create(CultureInfo.InvariantCulture, $"; retrying with damp ×10 = {damp:G4}."));
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>
    /// U with (H + damp·I)⁻¹ = UᵀU, or null when either Cholesky factorisation fails. Intermediates [in, in] are freed
    /// as soon as the next one exists, so the peak stays at two extra copies of H (large for 14k-wide layers).
    /// </summary>
    private static Tensor? TryUpperCholeskyOfInverse(Tensor hessian, double damp)
    {
        using var scope = NewDisposeScope();
        Tensor damped = hessian.clone();
        damped.diagonal().add_(damp);
        var (lower, info) = linalg.cholesky_ex(damped);
        damped.Dispose();
        if (info.item<int>() != 0) return null;
        Tensor inverse = lower.cholesky_inverse();
        lower.Dispose();
        var (lowerOfInverse, info2) = linalg.cholesky_ex(inverse);
        inverse.Dispose();
        if (info2.item<int>() != 0 || !lowerOfInverse.isfinite().all().item<bool>()) return null;
        // U = Lᵀ as a view: the solve only narrows it and multiplies by it, so no transposed copy of an [in, in] matrix.
        return lowerOfInverse.t().MoveToOuterDisposeScope();
    }
}
