using System.CommandLine;
using QuantSharp.Algorithms.AutoRound;
using QuantSharp.Quantization;

namespace QuantSharp.Cli.Commands;

/// <summary>The `quantize` flags of the block algorithms (--method awq | teq | autoround), kept apart from the core flags.</summary>
internal sealed class BlockMethodOptions
{
    private readonly Option<bool> _awqNoScale = new("--awq-no-auto-scale") { Description = "AWQ: skip the activation-aware scale search" };
    private readonly Option<bool> _awqNoClip = new("--awq-no-auto-clip") { Description = "AWQ: skip the per-group clip search" };
    private readonly Option<bool> _awqFolding = new("--awq-folding") { Description = "AWQ: scale only where the scale folds without tying (GQA: o_proj unscaled), as INC folding=True" };
    private readonly Option<bool> _awqNoDuo = new("--awq-no-duo-scaling") { Description = "AWQ: s = mean|x|^α (llm-awq) instead of INC's mean|x|^α / w̄^(1−α)" };
    private readonly Option<int?> _iters = new("--iters") { Description = "AutoRound iterations per block (default 200) / TEQ steps per block (default 200)" };
    private readonly Option<double?> _lr = new("--lr") { Description = "AutoRound learning rate (default 1/iters) / TEQ Adam learning rate (default 1e-3) / FlatQuant transforms (default 5e-3; clipping 10×)" };

    /// <summary>The shared --lr option (FlatQuant reads it too).</summary>
    public Option<double?> Lr => _lr;
    private readonly Option<double?> _minMaxLr = new("--minmax-lr") { Description = "AutoRound learning rate of the min/max factors (default --lr)" };
    private readonly Option<string?> _preset = new("--autoround-preset") { Description = "light (50 iters) | default (200) | best (1000 iters, 512 samples)" };
    private readonly Option<bool> _noQuantInput = new("--autoround-float-inputs") { Description = "AutoRound: train each block on float inputs instead of the quantized blocks' outputs" };

    public IEnumerable<Option> All => [_awqNoScale, _awqNoClip, _awqFolding, _awqNoDuo, _iters, _lr, _minMaxLr, _preset, _noQuantInput];

    /// <summary>The --method value for block algorithms, or null when <paramref name="method"/> is not one.</summary>
    public static QuantMethod? ParseMethod(string method) => method switch
    {
        "awq" => QuantMethod.Awq,
        "teq" => QuantMethod.Teq,
        "autoround" or "auto-round" or "signround" => QuantMethod.AutoRound,
        _ => null,
    };

    /// <summary>The configuration with the flags applied; <paramref name="samplesGiven"/>: --num-sequences was set explicitly.</summary>
    public QuantizationConfig Apply(ParseResult r, QuantizationConfig config, bool samplesGiven)
    {
        config = config with
        {
            Awq = config.Awq with
            {
                UseAutoScale = !r.GetValue(_awqNoScale),
                UseAutoClip = !r.GetValue(_awqNoClip),
                Folding = r.GetValue(_awqFolding),
                DuoScaling = !r.GetValue(_awqNoDuo),
            },
            Teq = config.Teq with
            {
                Steps = r.GetValue(_iters) ?? config.Teq.Steps,
                LearningRate = r.GetValue(_lr) ?? config.Teq.LearningRate,
            },
        };
        string preset = r.GetValue(_preset) ?? "default";
        var ar = AutoRoundOptions.Preset(preset);
        config = config with
        {
            AutoRound = ar with
            {
                Iters = r.GetValue(_iters) ?? ar.Iters,
                LearningRate = r.GetValue(_lr),
                MinMaxLearningRate = r.GetValue(_minMaxLr),
                QuantizedInputs = !r.GetValue(_noQuantInput),
            },
        };
        if (config.Method == QuantMethod.AutoRound && !samplesGiven && AutoRoundOptions.PresetSamples(preset) is int n)
            config = config with { NumSequences = n };
        return config;
    }

    public static string Describe(QuantizationConfig c) => c.Method switch
    {
        QuantMethod.Awq => $"awq{(c.Awq.UseAutoScale ? " auto-scale" : "")}{(c.Awq.UseAutoClip ? " auto-clip" : "")}{(c.Awq.Folding ? " folding" : "")}",
        QuantMethod.Teq => $"teq {c.Teq.Steps} steps lr {c.Teq.LearningRate:G3}",
        QuantMethod.AutoRound => $"autoround {c.AutoRound.Iters} iters",
        _ => c.Method.ToString().ToLowerInvariant(),
    };
}
