using QuantSharp.Algorithms.AutoRound;
using QuantSharp.Algorithms.Awq;
using QuantSharp.Algorithms.Teq;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;

namespace QuantSharp.Quantization;

/// <summary>The block algorithm of a configuration's method, and the checks that apply to all of them.</summary>
internal static class BlockAlgorithms
{
    public static IBlockAlgorithm? Create(QuantizationConfig config) => config.Method switch
    {
        QuantMethod.Awq => new AwqBlockAlgorithm(config.Awq),
        QuantMethod.Teq => new TeqBlockAlgorithm(config.Teq),
        QuantMethod.AutoRound => new AutoRoundBlockAlgorithm(config.AutoRound),
        _ => null,
    };

    public static void Validate(QuantizationConfig config)
    {
        string name = config.Method.ToString().ToLowerInvariant();
        if (config.Weights is null)
            throw new QuantSharpException($"--method {name} needs quantized weights (--w-bits < 16).");
        if (config.Activations is not null)
            throw new QuantSharpException($"--method {name} is weight-only: use --a-bits 16.");
        if (config.Transform != TransformKind.Identity)
            throw new QuantSharpException($"--method {name} folds scales into the norms before q/k/v and gate/up, which an online rotation would sit between: use --transform identity.");
        if (config.Method is QuantMethod.Teq or QuantMethod.AutoRound && config.Weights.Format != QuantFormat.Int)
            throw new QuantSharpException($"--method {name} trains through integer rounding: use --format int (got {config.Weights.FormatName}).");
        if (config.Method == QuantMethod.AutoRound && config.AutoRound.Iters < 0)
            throw new QuantSharpException($"--iters {config.AutoRound.Iters}: must be 0 or more.");
        if (config.Method == QuantMethod.Teq && config.Teq.Steps < 0)
            throw new QuantSharpException($"--iters {config.Teq.Steps}: must be 0 or more.");
    }
}
