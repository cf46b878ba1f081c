namespace QuantSharp.Quantizers;

/// <summary>
/// What a quantizer's element rounding is, as data, for code that must round outside tensor ops (the fused GPTQ
/// column kernel): either integers in [QMin, QMax] (t = x/s + z rounded half to even, then clamped; value (t − z)·s),
/// or a symmetric table of magnitudes (|x/s| to the nearest magnitude, ties to the even index, saturating at the
/// largest; sign kept; value ·s). Each quantizer derives its grid from the same format definition its tensor path
/// uses, so there is still one definition of each grid.
/// </summary>
public sealed record ElementGrid(bool Integer, float QMin, float QMax, float[] Magnitudes)
{
    public static ElementGrid Integers(int min, int max) => new(true, min, max, []);

    /// <summary>The finite non-negative values of a sign-magnitude format in code order (ascending).</summary>
    public static ElementGrid SymmetricTable(IEnumerable<float> magnitudes) => new(false, 0, 0, magnitudes.ToArray());

    /// <summary>An arbitrary ascending table of signed levels (nf4, fp4 tables; midpoint ties go to the lower level).</summary>
    public static ElementGrid LevelTable(IEnumerable<float> levels) => new(false, 0, 0, []) { Levels = levels.ToArray() };

    /// <summary>The signed levels of a level-table grid; null for integer and symmetric-magnitude grids.</summary>
    public float[]? Levels { get; init; }

    /// <summary>
    /// True when the grid value is rounded once more, to FP8 (FP8-aware INT, <see cref="Fp8AwareIntQuantizer"/>): a
    /// second rounding the fused kernels do not implement.
    /// </summary>
    public bool FollowedByFp8Rounding { get; init; }

    /// <summary>Whether the fused CUDA kernels can round to this grid (they know integers and magnitude tables only).</summary>
    public bool SupportsKernels => Levels is null && !FollowedByFp8Rounding;
}
