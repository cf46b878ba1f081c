using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>
/// What a GPTQ slot becomes when its Hessian cannot be factorised and --allow-rtn-fallback is set: each weight rounded
/// to nearest with the same quantizer and global scale GPTQ would have used, reported as a warning, never silently.
/// </summary>
internal static class RtnFallback
{
    public static IReadOnlyList<GptqResult> Solve(IReadOnlyList<Tensor> weights, Tensor hessian, IWeightQuantizer quantizer,
        IReadOnlyList<Tensor?> globalScales, string layer, string reason)
    {
        string warning = $"{reason} Quantized with RTN instead (--allow-rtn-fallback).";
        var results = new List<GptqResult>(weights.Count);
        for (int i = 0; i < weights.Count; i++)
        {
            using var scope = NewDisposeScope();
            Tensor w = weights[i].detach().to(ScalarType.Float32);
            Tensor? global = globalScales[i]?.to(ScalarType.Float32).to(w.device).reshape(1) ?? quantizer.ComputeGlobalScale(w);
            GroupParams p = quantizer.ComputeParams(w, global, layer);
            Tensor q = quantizer.QuantizeDequantize(w, p);
            double error = GptqSolver.RelativeError(q, w, hessian.to(ScalarType.Float32).to(w.device));
            results.Add(new GptqResult(q.MoveToOuterDisposeScope(), p.MoveToOuterDisposeScope(), null, error, 0, 0, 0, [warning]));
        }
        return results;
    }
}
