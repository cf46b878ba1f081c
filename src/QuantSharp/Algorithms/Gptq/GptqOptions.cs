namespace QuantSharp.Algorithms.Gptq;

/// <summary>Settings of one GPTQ layer solve.</summary>
public sealed record GptqOptions
{
    /// <summary>Dampening relative to mean(diag H), added to the diagonal before inversion.</summary>
    public double RelDamp { get; init; } = 0.01;

    /// <summary>Columns per lazy-batch block (error updates to later columns are applied once per block).</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>Process columns by descending diag(H) (most-activated inputs first).</summary>
    public bool ActOrder { get; init; }

    /// <summary>
    /// Compute all group parameters once from the whole weight before the column loop (MR-GPTQ default). When false
    /// ("classic"), each group's parameters are computed when its first column comes up, from the weight as updated by
    /// the blocks before it (so <see cref="BlockSize"/> matters: 128 = the GPTQ paper's loop, 2048 = INC's default).
    /// </summary>
    public bool StaticGroups { get; init; } = true;

    /// <summary>
    /// Group-aware reordering: groups ordered by their largest diag(H), columns inside a group by diag(H), groups kept
    /// contiguous. Replaces <see cref="ActOrder"/>'s plain ordering when set.
    /// </summary>
    public bool GroupAwareReorder { get; init; }

    /// <summary>How many times a failed Cholesky is retried with 10× the dampening before giving up.</summary>
    public int MaxDampRetries { get; init; } = 5;

    /// <summary>
    /// On CUDA, run each block's column loop (static groups) as one fused kernel when NVRTC is available; false keeps the
    /// tensor-op loop (the reference the kernel is checked against by <c>quantsharp bench gptq</c>).
    /// </summary>
    public bool UseCudaKernel { get; init; } = true;

    /// <summary>Names the layer in warnings and errors.</summary>
    public string LayerName { get; init; } = "layer";

    /// <summary>Called with each warning as it happens (the same text is also in <see cref="GptqResult.Warnings"/>).</summary>
    public Action<string>? OnWarning { get; init; }
}
