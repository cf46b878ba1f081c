namespace QuantSharp.Algorithms.Teq;

/// <summary>
/// Settings of trainable equivalent transformation. INC trains the scales once over the whole model (Adam, lr 1e-3,
/// β = (0.9, 0.9), linear schedule with 5% warm-up); we train them block by block against the block output, with the
/// same optimizer and schedule and <see cref="Steps"/> steps per block.
/// </summary>
public sealed record TeqOptions
{
    public int Steps { get; init; } = 200;
    public double LearningRate { get; init; } = 1e-3;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.9;
    public double WarmupRatio { get; init; } = 0.05;
    /// <summary>Seeds the order in which calibration batches are visited.</summary>
    public int Seed { get; init; } = 42;
}
