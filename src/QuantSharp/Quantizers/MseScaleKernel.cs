using QuantSharp.Backend.Cuda;
using QuantSharp.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// <see cref="MseScaleSearch"/> as one CUDA kernel: a thread per group tries the same shrink factors in the same order
/// with the same float32 arithmetic (element grid from <see cref="ElementGrid"/>, error Σ|x − q(x)|^2.4, strictly
/// smaller wins). In tensor ops each of the 100 candidates is some twenty full passes over the weight, which made the
/// observer the largest part of an 8B layer's MR-GPTQ solve. The first use in a process checks the kernel against the
/// tensor path on that tensor and turns the kernel off (with a warning) if they disagree.
/// </summary>
internal static class MseScaleKernel
{
    private const string Name = "quantsharp_mse_scale";

    private const string Source = GridRoundingSource.Function + """
        extern "C" __global__ void quantsharp_mse_scale(
            const float* __restrict__ x, const float* __restrict__ scale0, const float* __restrict__ zero,
            const float* __restrict__ factors, int steps, const float* __restrict__ levels, int num_levels,
            int integer_grid, float qmin, float qmax, float norm, float* __restrict__ best_scale, long long groups, int n)
        {
            long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
            if (g >= groups) return;
            const float* xs = x + g * n;
            float s0 = scale0[g], z = zero ? zero[g] : 0.0f, best = __int_as_float(0x7f800000), chosen = s0;
            for (int i = 0; i < steps; i++) {
                float s = __fmul_rn(s0, factors[i]), err = 0.0f;
                for (int k = 0; k < n; k++) {
                    float v = xs[k];
                    float value = quantsharp_round_to_grid(v, s, z, levels, num_levels, integer_grid, qmin, qmax);
                    err = __fadd_rn(err, powf(fabsf(__fsub_rn(v, value)), norm));
                }
                if (err < best) { best = err; chosen = s; }
            }
            best_scale[g] = chosen;
        }
        """;

    private static readonly object Gate = new();
    private static bool _verified;
    private static bool _disabled;

    public static bool CanRun(Tensor grouped) =>
        grouped.device.type == DeviceType.CUDA && !_disabled && CudaKernels.Ready(Math.Max(0, (int)grouped.device.index), Name, Source);

    /// <summary>The search on [R, G, n] values with [R, G, 1] initial scales (and zero points); returns [R, G, 1].</summary>
    public static Tensor Search(Tensor grouped, Tensor scale0, Tensor? zero, ElementGrid grid, float[] factors, float norm,
        Func<Tensor> tensorPath)
    {
        using var scope = NewDisposeScope();
        Tensor result = Run(grouped, scale0, zero, grid, factors, norm);
        lock (Gate)
        {
            if (!_verified)
            {
                _verified = true;
                using Tensor reference = tensorPath();
                double differing = result.ne(reference).to(ScalarType.Float32).mean().item<float>();
                // Float sums in another order may break a rare exact tie differently; anything more is a bug.
                if (differing > 1e-3)
                {
                    _disabled = true;
                    Console.Error.WriteLine($"warning: the CUDA MSE-observer kernel disagrees with the tensor path on {differing:P3} of the " +
                                            "groups; it is switched off for this run (results come from the tensor path).");
                    return reference.clone().MoveToOuterDisposeScope();
                }
            }
        }
        return result.MoveToOuterDisposeScope();
    }

    private static Tensor Run(Tensor grouped, Tensor scale0, Tensor? zero, ElementGrid grid, float[] factors, float norm)
    {
        using var scope = NewDisposeScope();
        Device device = grouped.device;
        long groups = grouped.shape[0] * grouped.shape[1];
        int n = checked((int)grouped.shape[2]);
        Tensor x = grouped.to(ScalarType.Float32).contiguous();
        Tensor s0 = scale0.to(ScalarType.Float32).reshape(groups).contiguous();
        Tensor? z = zero?.to(ScalarType.Float32).reshape(groups).contiguous();
        Tensor f = DeviceConstants.Get("mse-factors:" + factors.Length, device, () => factors);
        Tensor levels = DeviceConstants.Get("grid:" + string.Join(",", grid.Magnitudes), device,
            () => grid.Magnitudes.Length > 0 ? grid.Magnitudes : [0f]);
        Tensor best = empty(groups, ScalarType.Float32, device);
        const int threads = 128;
        CudaKernels.Launch(device.index < 0 ? 0 : device.index, Name, Source, (uint)((groups + threads - 1) / threads), threads,
            CudaKernels.Pointer(x), CudaKernels.Pointer(s0), z is null ? IntPtr.Zero : CudaKernels.Pointer(z),
            CudaKernels.Pointer(f), factors.Length, CudaKernels.Pointer(levels), (int)levels.numel(), grid.Integer ? 1 : 0,
            grid.QMin, grid.QMax, norm, CudaKernels.Pointer(best), groups, n);
        return best.reshape(scale0.shape).MoveToOuterDisposeScope();
    }
}
