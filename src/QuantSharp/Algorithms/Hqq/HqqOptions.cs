namespace QuantSharp.Algorithms.Hqq;

/// <summary>
/// Half-quadratic quantization settings, with Intel Neural Compressor's defaults: the proximal solver (lp norm 0.7,
/// β = 10 growing by κ = 1.01 per iteration, at most 20 iterations), zero points quantized to 8 bits per tensor, scales
/// kept in float (when quantized: 8 bits in groups of 128).
/// </summary>
public sealed record HqqOptions
{
    public double LpNorm { get; init; } = 0.7;
    public double Beta { get; init; } = 10;
    public double Kappa { get; init; } = 1.01;
    public int Iterations { get; init; } = 20;

    /// <summary>Quantize the optimised zero points (8-bit, one min/max range for the whole tensor); INC default on.</summary>
    public bool QuantZero { get; init; } = true;

    /// <summary>Quantize the scales (8-bit, groups of <see cref="ScaleQuantGroupSize"/>); INC default off.</summary>
    public bool QuantScale { get; init; }

    public int ScaleQuantGroupSize { get; init; } = 128;

    /// <summary>
    /// Round the initial zero point before optimising. INC (following HQQ) does so for 4-bit weights only; null means
    /// that rule, true/false forces it.
    /// </summary>
    public bool? RoundInitialZero { get; init; }

    public void Validate()
    {
        if (Iterations < 0) throw new QuantSharpException($"--hqq-iters {Iterations}: must be 0 or more.");
        if (!(LpNorm > 0 && LpNorm <= 1)) throw new QuantSharpException($"HQQ lp norm {LpNorm}: expected 0 < p <= 1.");
        if (!(Beta > 0) || !(Kappa >= 1)) throw new QuantSharpException($"HQQ beta {Beta} / kappa {Kappa}: expected beta > 0 and kappa >= 1.");
        if (ScaleQuantGroupSize < 1)
            throw new QuantSharpException($"--hqq-scale-quant-group-size {ScaleQuantGroupSize}: must be positive.");
    }
}
