using QuantSharp.Backend.Cuda;
using QuantSharp.Formats;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Gptq;

/// <summary>
/// GPTQ's inner column loop over one block (at most 128 columns) as a single CUDA kernel, for static group
/// parameters. With tensor ops every column costs some twenty launches (quantize, error, rank-1 update, copies), which
/// makes the solve of an 8B-class layer launch-bound; here each thread owns one weight row, keeps the block's slice of
/// it in registers/local memory and walks the columns in order, exactly as the tensor path does, with the element grid
/// taken from the quantizer (<see cref="ElementGrid"/>). The trailing update of later blocks stays a matmul.
/// </summary>
internal static class GptqBlockKernel
{
    public const int MaxColumns = 128;

    private const string Name = "quantsharp_gptq_block";

    // Layout: the block, the scales/zeros and both outputs are column-major [count, rows] so that for a given column
    // consecutive threads touch consecutive addresses. u is the block's [count, count] upper factor, row-major.
    private const string Source = GridRoundingSource.Function + """
        extern "C" __global__ void quantsharp_gptq_block(
            const float* __restrict__ w, const float* __restrict__ u, const float* __restrict__ scale,
            const float* __restrict__ zero, const float* __restrict__ levels, int num_levels, int integer_grid,
            float qmin, float qmax, float* __restrict__ q_out, float* __restrict__ err_out, int rows, int count)
        {
            int r = blockIdx.x * blockDim.x + threadIdx.x;
            if (r >= rows) return;
            float row[128];
            for (int j = 0; j < count; j++) row[j] = w[(size_t)j * rows + r];
            for (int i = 0; i < count; i++) {
                size_t at = (size_t)i * rows + r;
                float x = row[i];
                float value = quantsharp_round_to_grid(x, scale[at], zero ? zero[at] : 0.0f, levels, num_levels, integer_grid, qmin, qmax);
                q_out[at] = value;
                float e = __fdiv_rn(__fsub_rn(x, value), u[i * count + i]);
                err_out[at] = e;
                for (int j = i + 1; j < count; j++) row[j] = __fsub_rn(row[j], __fmul_rn(e, u[i * count + j]));
            }
        }
        """;

    /// <summary>True when the kernel can run for this weight (CUDA, fused kernels available, block fits).</summary>
    public static bool CanRun(Tensor w, int blockSize) =>
        w.device.type == DeviceType.CUDA && blockSize <= MaxColumns && CudaKernels.Ready(Math.Max(0, (int)w.device.index), Name, Source);

    /// <summary>
    /// Quantizes block columns [c1, c2) of <paramref name="w"/> (already permuted) with per-position scales/zeros
    /// <paramref name="scale"/>/<paramref name="zero"/> ([rows, count]); writes the dequantized values into
    /// <paramref name="quantized"/> and returns the scaled errors [rows, count] for the trailing update.
    /// </summary>
    public static Tensor SolveBlock(Tensor w, Tensor quantized, Tensor upper, int c1, int c2, Tensor scale, Tensor? zero, ElementGrid grid)
    {
        using var scope = NewDisposeScope();
        int count = c2 - c1;
        long rows = w.shape[0];
        Tensor block = w.narrow(1, c1, count).t().contiguous();
        Tensor u = upper.narrow(0, c1, count).narrow(1, c1, count).contiguous();
        Tensor s = scale.t().contiguous();
        Tensor? z = zero?.t().contiguous();
        Tensor levels = DeviceConstants.Get("grid:" + string.Join(",", grid.Magnitudes), w.device,
            () => grid.Magnitudes.Length > 0 ? grid.Magnitudes : [0f]);
        Tensor q = empty(count, rows, ScalarType.Float32, w.device);
        Tensor err = empty(count, rows, ScalarType.Float32, w.device);
        const int threads = 128;
        CudaKernels.Launch(w.device.index < 0 ? 0 : w.device.index, Name, Source, (uint)((rows + threads - 1) / threads), threads,
            CudaKernels.Pointer(block), CudaKernels.Pointer(u), CudaKernels.Pointer(s), z is null ? IntPtr.Zero : CudaKernels.Pointer(z),
            CudaKernels.Pointer(levels), (int)levels.numel(), grid.Integer ? 1 : 0, grid.QMin, grid.QMax,
            CudaKernels.Pointer(q), CudaKernels.Pointer(err), (int)rows, count);
        quantized.narrow(1, c1, count).copy_(q.t());
        return err.t().MoveToOuterDisposeScope();
    }
}
