namespace QuantSharp.Algorithms.AutoRound;

/// <summary>
/// Settings of AutoRound (SignRound), defaults of github.com/intel/auto-round: 200 iterations, learning rate
/// 1/iters for the rounding offsets and for the min/max scale factors, decayed linearly to 0, the best-loss
/// parameters kept, quantized inputs from earlier blocks. Samples and batch size are the pipeline's
/// (--num-sequences, default 128; --calib-batch-size, default 8).
/// </summary>
public sealed record AutoRoundOptions
{
    public int Iters { get; init; } = 200;

    /// <summary>Null: 1/<see cref="Iters"/>.</summary>
    public double? LearningRate { get; init; }

    /// <summary>Null: the same as the offsets' learning rate.</summary>
    public double? MinMaxLearningRate { get; init; }

    /// <summary>Tune the per-group min/max scale factors (init 1, kept in [0, 1]) besides the rounding offsets.</summary>
    public bool MinMaxTuning { get; init; } = true;

    /// <summary>Feed each block the outputs of the already quantized blocks (else the float outputs).</summary>
    public bool QuantizedInputs { get; init; } = true;

    /// <summary>Seeds the order in which calibration batches are visited.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>auto-round's presets: light = 50 iterations, best = 1000 iterations (with 512 samples).</summary>
    public static AutoRoundOptions Preset(string name) => name switch
    {
        "default" => new AutoRoundOptions(),
        "light" => new AutoRoundOptions { Iters = 50 },
        "best" => new AutoRoundOptions { Iters = 1000 },
        _ => throw new QuantSharpException($"--autoround-preset {name}: expected light, default or best."),
    };

    /// <summary>Calibration samples a preset asks for (best: 512), or null to keep the pipeline's.</summary>
    public static int? PresetSamples(string name) => name == "best" ? 512 : null;
}
