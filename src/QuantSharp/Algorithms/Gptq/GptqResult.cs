using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>Output of <see cref="GptqSolver.Quantize"/>. Owns its tensors.</summary>
public sealed class GptqResult : IDisposable
{
    internal GptqResult(Tensor weight, GroupParams parameters, Tensor? permutation, double relativeError,
        double damp, int dampRetries, int deadColumns, IReadOnlyList<string> warnings)
    {
        Weight = weight;
        Params = parameters;
        Permutation = permutation;
        RelativeError = relativeError;
        Damp = damp;
        DampRetries = dampRetries;
        DeadColumns = deadColumns;
        Warnings = warnings;
    }

    /// <summary>Quantized-dequantized weight [out, in], float32, original column order.</summary>
    public Tensor Weight { get; }

    /// <summary>Parameters of the original column groups; <c>quantizer.Codes(Weight, Params)</c> gives the export codes.</summary>
    public GroupParams Params { get; }

    /// <summary>Processing order (int64 [in], position → original column) when reordered, else null.</summary>
    public Tensor? Permutation { get; }

    /// <summary>
    /// FP-Quant's "Relative MSE error": mean((Q−W)·H_d ∘ (Q−W)) / (mean(W·H_d ∘ W) + 1e-6), with H_d = H + Damp·I the
    /// dampened Hessian of the solve (as FP-Quant, which dampens H in place) and W with dead columns zeroed.
    /// </summary>
    public double RelativeError { get; }

    /// <summary>The absolute dampening finally added to diag(H).</summary>
    public double Damp { get; }

    /// <summary>How many times the dampening had to be multiplied by 10.</summary>
    public int DampRetries { get; }

    /// <summary>Input columns with diag(H) == 0 (never activated); their weights are set to 0.</summary>
    public int DeadColumns { get; }

    public IReadOnlyList<string> Warnings { get; }

    public void Dispose()
    {
        Weight.Dispose();
        Params.Dispose();
        Permutation?.Dispose();
    }
}
