namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// The scale searches ggml's quantizers share (ggml-quants.c), re-derived here: a symmetric weighted least-squares
/// scale search (make_qx_quants), the affine scale+min searches (make_qkx2/qkx3_quants) and the search for the
/// positive super-block scale of sub-block scales (make_qp_quants). All arithmetic is float, as in ggml, so the chosen
/// levels match its rules; ties round to even, like ggml's nearest_int.
/// </summary>
internal static class ScaleSearch
{
    /// <summary>Below this amax a group counts as all zeros.</summary>
    public const float GroupMaxEps = 1e-15f;

    public static int NearestInt(float v) => (int)MathF.Round(v, MidpointRounding.ToEven);

    /// <summary>
    /// Symmetric levels in [-nmax, nmax-1] (stored +nmax) with a weighted least-squares scale; tries 18 scales around
    /// nmax/|max| and keeps the best weighted fit. Returns the scale (signed: the largest magnitude maps to -nmax).
    /// </summary>
    public static float SymmetricWeighted(int nmax, ReadOnlySpan<float> x, Span<byte> levels, ReadOnlySpan<float> weights)
    {
        int n = x.Length;
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            levels[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (byte)(l + nmax);
            float w = weights[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = weights[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++) levels[i] = (byte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>
    /// Affine levels 0..nmax: x ≈ scale·l − min (min ≥ 0 returned in <paramref name="theMin"/>). Starts from the
    /// range fit, then for nstep+1 candidate inverse scales (rmin + rdelta·k + nmax)/(max − min) solves the weighted
    /// least squares for scale and offset and keeps the lowest weighted error. A null weight span means w = x².
    /// </summary>
    public static float AffineWeighted(int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> levels,
        out float theMin, float rmin, float rdelta, int nstep, bool clampCandidates)
    {
        int n = x.Length;
        Span<float> w = stackalloc float[n];
        for (int i = 0; i < n; i++) w[i] = weights.IsEmpty ? x[i] * x[i] : weights[i];
        float min = x[0], max = x[0];
        float sumW = w[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            sumW += w[i];
            sumX += w[i] * x[i];
        }
        if (min > 0) min = 0;
        if (max <= min)
        {
            levels[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
            levels[i] = (byte)l;
            float diff = scale * l + min - x[i];
            bestError += w[i] * diff * diff;
        }
        Span<byte> trial = stackalloc byte[n];
        for (int k = 0; k <= nstep; k++)
        {
            iscale = (rmin + rdelta * k + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                float v = iscale * (x[i] - min);
                // The qkx3 variant clamps before rounding so an extreme candidate cannot overflow the rounding.
                int l = clampCandidates ? (v > 0 ? NearestInt(MathF.Min(v, nmax)) : 0) : Math.Clamp(NearestInt(v), 0, nmax);
                trial[i] = (byte)l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXL += w[i] * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det <= 0) continue;
            float thisScale = (sumW * sumXL - sumX * sumL) / det;
            float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
            if (thisMin > 0)
            {
                thisMin = 0;
                thisScale = sumXL / sumL2;
            }
            float error = 0;
            for (int i = 0; i < n; i++)
            {
                float diff = thisScale * trial[i] + thisMin - x[i];
                error += w[i] * diff * diff;
            }
            if (error < bestError)
            {
                trial.CopyTo(levels);
                bestError = error;
                scale = thisScale;
                min = thisMin;
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// Levels 0..nmax for non-negative values (sub-block scales or mins) with one positive scale, weighted: tries
    /// 8 scales around max/nmax, then refines single levels while the weighted fit improves (make_qp_quants).
    /// </summary>
    public static float PositiveWeighted(int nmax, ReadOnlySpan<float> x, Span<byte> levels, ReadOnlySpan<float> weights)
    {
        int n = x.Length;
        float max = 0;
        for (int i = 0; i < n; i++) max = MathF.Max(max, x[i]);
        if (max < GroupMaxEps)
        {
            levels[..n].Clear();
            return 0f;
        }
        float iscale = nmax / max;
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            float diff = x[i] - scale * l;
            bestMse += weights[i] * diff * diff;
        }
        for (int step = -4; step <= 4; step++)
        {
            if (step == 0) continue;
            float iscaleTry = (0.1f * step + nmax) / max;
            float scaleTry = 1 / iscaleTry;
            float mse = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Min(nmax, NearestInt(iscaleTry * x[i]));
                float diff = x[i] - scaleTry * l;
                mse += weights[i] * diff * diff;
            }
            if (mse < bestMse)
            {
                bestMse = mse;
                iscale = iscaleTry;
            }
        }
        float sumlx = 0, suml2 = 0;
        Span<int> l32 = stackalloc int[n];
        for (int i = 0; i < n; i++)
        {
            int l = Math.Min(nmax, NearestInt(iscale * x[i]));
            l32[i] = l;
            sumlx += weights[i] * x[i] * l;
            suml2 += weights[i] * l * l;
        }
        for (int pass = 0; pass < 5; pass++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = weights[i];
                float slx = sumlx - w * x[i] * l32[i];
                float sl2 = suml2 - w * l32[i] * l32[i];
                if (slx > 0 && sl2 > 0)
                {
                    int newL = Math.Min(nmax, NearestInt(x[i] * sl2 / slx));
                    if (newL != l32[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            l32[i] = newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) levels[i] = (byte)Math.Max(0, l32[i]);
        return suml2 > 0 ? sumlx / suml2 : 0f;
    }

    /// <summary>Σx² of a span, in float as ggml sums it.</summary>
    /// <summary>
    /// Levels in [0, 2·offset) of a symmetric block with value = d·(level − offset) (Q4_0: offset 8, Q5_0: 16); returns d.
    /// Without importance d = max/−offset (the signed value of largest magnitude maps to −offset) and levels are
    /// truncated after +offset+0.5, i.e. rounded, the top clamped since x·(1/d) can reach 2·offset; with importance
    /// <paramref name="weights"/> (filled here) drive ggml's weighted search.
    /// </summary>
    public static float SymmetricBlock(int offset, ReadOnlySpan<float> x, ReadOnlySpan<float> importance, float sigma2,
        Span<byte> levels, Span<float> weights)
    {
        if (importance.IsEmpty)
        {
            float amax = 0, max = 0;
            foreach (float v in x)
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            float d = max / -offset;
            float id = d != 0 ? 1 / d : 0;
            for (int j = 0; j < x.Length; j++) levels[j] = (byte)Math.Min(2 * offset - 1, (int)(x[j] * id + (offset + 0.5f)));
            return d;
        }
        ImportanceWeights(x, importance, sigma2, weights);
        return SymmetricWeighted(offset, x, levels, weights);
    }

    public static float SumSquares(ReadOnlySpan<float> x)
    {
        float s = 0;
        foreach (float v in x) s += v * v;
        return s;
    }

    /// <summary>ggml's importance weighting: w_i = imatrix_i · sqrt(σ² + x_i²).</summary>
    public static void ImportanceWeights(ReadOnlySpan<float> x, ReadOnlySpan<float> importance, float sigma2, Span<float> weights)
    {
        for (int i = 0; i < x.Length; i++) weights[i] = importance[i] * MathF.Sqrt(sigma2 + x[i] * x[i]);
    }
}
