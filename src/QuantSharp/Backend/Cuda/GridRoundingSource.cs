namespace QuantSharp.Backend.Cuda;

/// <summary>
/// The CUDA device function every fused kernel uses to round one value onto a quantizer's element grid
/// (<see cref="Quantizers.ElementGrid"/>): integers (x/s + z rounded half to even, clamped, value (t − z)·s) or a table
/// of magnitudes (|x/s| to the nearest, ties to the even index, saturating; sign kept; value ·s). Float32 with IEEE
/// rounding at every step, as libtorch computes the tensor path. Kernels prepend it to their own source.
/// </summary>
internal static class GridRoundingSource
{
    public const string Function = """
        __device__ __forceinline__ float quantsharp_round_to_grid(float x, float s, float z, const float* levels,
            int num_levels, int integer_grid, float qmin, float qmax)
        {
            if (integer_grid) {
                float t = rintf(__fadd_rn(__fdiv_rn(x, s), z));      /* round half to even, like torch.round */
                t = fminf(fmaxf(t, qmin), qmax);
                return __fmul_rn(__fsub_rn(t, z), s);
            }
            float t = __fdiv_rn(x, s), a = fabsf(t);
            int lo = 0, hi = num_levels - 1;
            if (a >= levels[hi]) lo = hi;
            else while (hi - lo > 1) { int mid = (lo + hi) >> 1; if (levels[mid] <= a) lo = mid; else hi = mid; }
            float m = levels[lo];
            if (lo < num_levels - 1) {
                float below = a - levels[lo], above = levels[lo + 1] - a;
                if (above < below || (above == below && ((lo + 1) & 1) == 0)) m = levels[lo + 1];
            }
            return __fmul_rn(copysignf(m, t), s);
        }

        """;
}
