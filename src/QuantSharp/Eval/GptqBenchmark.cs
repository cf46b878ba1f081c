using System.Diagnostics;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Eval;

/// <summary>One GPTQ solve timed with and without the fused CUDA block kernel, and how far the two results differ.</summary>
public sealed record GptqBenchmarkResult(int Rows, int Columns, string Format, bool KernelUsed, double KernelSeconds,
    double TensorOpSeconds, double MaxAbsDifference, double DifferingFraction, double KernelRelativeError, double TensorOpRelativeError,
    string? KernelUnavailableReason);

/// <summary>
/// Solves a random layer with correlated inputs (so H is far from diagonal) twice: with the fused kernel and with
/// the tensor-op column loop. Results agree up to float32 rounding; an element may land on the neighbouring grid
/// point when its value sits at a rounding boundary, so the report gives the fraction of differing elements.
/// </summary>
public static class GptqBenchmark
{
    public static GptqBenchmarkResult Run(int rows, int columns, QuantSpec spec, bool actOrder, Device device, int tokens = 8192, int seed = 0)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(seed);
        Tensor mixing = eye(columns, device: device).mul(0.5).add(randn(columns, columns, device: device).div(Math.Sqrt(columns)));
        Tensor x = randn(tokens, columns, device: device).matmul(mixing).mul(randn(columns, device: device).mul(0.75).exp());
        Tensor w = randn(rows, columns, device: device).mul(0.02);
        using var h = new HessianAccumulator(columns, device);
        h.Add(x);
        var quantizer = WeightQuantizer.Create(spec);
        var options = new GptqOptions { ActOrder = actOrder };
        // Warm up both paths (kernel compilation, cuBLAS/cuSOLVER handles) before timing.
        GptqSolver.Quantize(w.narrow(0, 0, Math.Min(rows, 256)), h.Hessian, quantizer, options).Dispose();
        GptqSolver.Quantize(w.narrow(0, 0, Math.Min(rows, 256)), h.Hessian, quantizer, options with { UseCudaKernel = false }).Dispose();
        (GptqResult r, double s) Timed(GptqOptions o)
        {
            Sync(device);
            var clock = Stopwatch.StartNew();
            var r = GptqSolver.Quantize(w, h.Hessian, quantizer, o);
            Sync(device);
            return (r, clock.Elapsed.TotalSeconds);
        }
        var (fused, fusedSeconds) = Timed(options);
        var (plain, plainSeconds) = Timed(options with { UseCudaKernel = false });
        using (fused)
        using (plain)
        {
            Tensor diff = fused.Weight.sub(plain.Weight).abs();
            return new GptqBenchmarkResult(rows, columns, spec.FormatName, Backend.Cuda.CudaKernels.Available && device.type == DeviceType.CUDA,
                fusedSeconds, plainSeconds, diff.max().item<float>(), diff.gt(0).to(ScalarType.Float32).mean().item<float>(),
                fused.RelativeError, plain.RelativeError,
                device.type == DeviceType.CUDA ? Backend.Cuda.CudaKernels.Failure : "not a CUDA device");
        }
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }
}
