namespace QuantSharp.Algorithms.Awq;

/// <summary>Settings of activation-aware weight quantization (defaults: Intel Neural Compressor's AWQConfig).</summary>
public sealed record AwqOptions
{
    /// <summary>Search the per-input-channel scale s = mean|x|^α / mean(|w|/max|w|)^(1−α) over <see cref="Grid"/> values of α.</summary>
    public bool UseAutoScale { get; init; } = true;

    /// <summary>Search, per weight group, the range shrink ratio with the lowest output error.</summary>
    public bool UseAutoClip { get; init; } = true;

    /// <summary>
    /// True: scale only linears whose scale folds exactly into the previous op, skipping o_proj when grouped-query
    /// attention gives v_proj fewer outputs than o_proj has inputs (INC folding=True). False (INC's default): o_proj
    /// is scaled too; INC keeps such a scale as an online multiplier, we tie it across the query heads that share a
    /// v head so it still folds into v_proj (exact, and nothing extra to export).
    /// </summary>
    public bool Folding { get; init; }

    /// <summary>Divide by the weight statistic as INC does (s = x^α / w^(1−α)); false gives llm-awq's s = x^α.</summary>
    public bool DuoScaling { get; init; } = true;

    /// <summary>α values tried: i/Grid for i &lt; Grid.</summary>
    public int Grid { get; init; } = 20;

    /// <summary>Clip ratios tried: 1 − i/<see cref="ClipGrid"/> for i &lt; <see cref="ClipGrid"/>·<see cref="MaxShrink"/>.</summary>
    public int ClipGrid { get; init; } = 20;

    public double MaxShrink { get; init; } = 0.5;
}
