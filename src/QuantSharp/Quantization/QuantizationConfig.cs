using QuantSharp.Algorithms.AutoRound;
using QuantSharp.Algorithms.Awq;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Algorithms.Hqq;
using QuantSharp.Algorithms.Teq;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;

namespace QuantSharp.Quantization;

public enum QuantMethod { Rtn, Gptq, Hqq, Awq, Teq, AutoRound }

/// <summary>
/// Everything a quantization run needs: formats for weights and activations, method, rotations and calibration.
/// Weight or activation spec null means that side stays in the model's dtype (W16 / A16).
/// </summary>
public sealed record QuantizationConfig
{
    public QuantMethod Method { get; init; } = QuantMethod.Rtn;
    public QuantSpec? Weights { get; init; }
    public QuantSpec? Activations { get; init; }
    public TransformKind Transform { get; init; } = TransformKind.Identity;
    public int TransformGroupSize { get; init; } = 128;
    public bool TransformRandomSigns { get; init; }
    public long TransformSeed { get; init; }
    public GptqOptions Gptq { get; init; } = new();
    /// <summary>Settings of <see cref="QuantMethod.Hqq"/> (INC's defaults).</summary>
    public HqqOptions Hqq { get; init; } = new();
    public AwqOptions Awq { get; init; } = new();
    public TeqOptions Teq { get; init; } = new();
    public AutoRoundOptions AutoRound { get; init; } = new();
    /// <summary>One NVFP weight global scale shared by q/k/v and one by gate/up (what fused kernels need).</summary>
    public bool FuseGlobalScale { get; init; }
    /// <summary>NVFP4 activations take their global scale from each call's input, uncalibrated (quantize-on-load).</summary>
    public bool DynamicActivationGlobalScale { get; init; }
    public int NumSequences { get; init; } = 128;
    public int SeqLen { get; init; } = 512;
    public int Seed { get; init; } = 42;
    /// <summary>Calibration sequences per forward pass through a layer.</summary>
    public int CalibBatchSize { get; init; } = 8;
    /// <summary>
    /// Where layers are calibrated and quantized. When set and not the model's device (the model loaded in CPU memory,
    /// this a GPU: --cpu-offload-modules), layers are streamed: each decoder layer moves here for calibration,
    /// quantization and re-run, then back with its quantization parameters, so only one layer occupies the GPU.
    /// </summary>
    public TorchSharp.torch.Device? ComputeDevice { get; init; }

    /// <summary>Keep calibration activations in CPU memory, moving one batch at a time to the device.</summary>
    public bool CpuOffloadActivations { get; init; }

    /// <summary>
    /// Per-linear configurations (INC-style local rules, built by <see cref="Api.Quantizer"/>): each linear is quantized
    /// with the configuration it resolves to, or kept in float when that has no weight spec. Null: every linear uses
    /// this configuration.
    /// </summary>
    public PerLinearConfigs? PerLinear { get; init; }

    /// <summary>
    /// GPTQ's true-sequential order: quantize q/k/v, then re-run the partly quantized layer to capture o_proj's input,
    /// quantize o_proj, then gate/up, then down_proj (INC's and AutoGPTQ's true_sequential).
    /// </summary>
    public bool TrueSequential { get; init; }

    /// <summary>The configuration of one linear (full name, e.g. model.layers.0.mlp.down_proj, or lm_head).</summary>
    public QuantizationConfig For(string linearName) => PerLinear?.Resolve(linearName) ?? this;

    /// <summary>Every configuration some linear may use: this one and the per-linear ones.</summary>
    internal IEnumerable<QuantizationConfig> AllLinearConfigs => PerLinear is null ? [this] : PerLinear.Distinct;

    /// <summary>True when some linear is quantized with GPTQ (so Hessians must be gathered).</summary>
    public bool UsesGptq => AllLinearConfigs.Any(c => c.Method == QuantMethod.Gptq && c.Weights is not null);

    /// <summary>True when some linear's weights are quantized.</summary>
    public bool QuantizesWeights => AllLinearConfigs.Any(c => c.Weights is not null);

    /// <summary>
    /// Where to checkpoint after each decoder layer (and to resume from): --checkpoint-dir / --resume. Not part of the
    /// recipe: a run resumed from a checkpoint gives exactly what the uninterrupted run gives.
    /// </summary>
    public LayerCheckpoint? Checkpoint { get; init; }

    /// <summary>
    /// A GPTQ layer whose Hessian stays non-positive-definite after every dampening retry falls back to RTN (reported
    /// as a warning) instead of stopping the run: --allow-rtn-fallback.
    /// </summary>
    public bool AllowRtnFallback { get; init; }

    /// <summary>KV-cache quantization (--k-bits/--v-bits), with a per-head Hadamard on q/k/v when a rotation is set.</summary>
    public KvCacheSpec? KvCache { get; init; }

    /// <summary>True when the pipeline must run calibration data through the layers.</summary>
    public bool NeedsCalibration =>
        Method == QuantMethod.Gptq || IsBlockMethod || (Activations?.Format == QuantFormat.NvFp && !DynamicActivationGlobalScale)
        || Activations is { Format: QuantFormat.Fp8, GroupSize: QuantSpec.PerTensor }
        || (PerLinear is not null && UsesGptq);

    /// <summary>Methods that work on a whole decoder block and its calibration inputs (<see cref="IBlockAlgorithm"/>).</summary>
    public bool IsBlockMethod => Method is QuantMethod.Awq or QuantMethod.Teq or QuantMethod.AutoRound;

    public void Validate()
    {
        Weights?.Validate("--w-");
        Activations?.Validate("--a-");
        if (PerLinear is not null) foreach (var c in PerLinear.Distinct) c.Weights?.Validate("--w-");
        if (KvCache is { } kv && (kv.QuantizesKeys || kv.QuantizesValues) && Weights is null && Activations is null)
            throw new QuantSharpException("--k-bits/--v-bits quantize the KV cache of a W/A-quantized model: set --w-bits or --a-bits below 16 too.");
        if (Weights is null && Activations is null && Transform == TransformKind.Identity && !QuantizesWeights)
            throw new QuantSharpException("nothing to do: --w-bits and --a-bits are both 16 and no --transform is set.");
        if (Method == QuantMethod.Gptq && Weights is null && PerLinear is null)
            throw new QuantSharpException("--method gptq needs quantized weights (--w-bits < 16).");
        if (Activations is { GroupSize: QuantSpec.PerTensor } && Activations.Format != QuantFormat.Fp8)
            throw new QuantSharpException("--a-group-size 0 (per tensor, static from calibration) is supported for --format fp8 only; use -1 (per token) or a group size.");
        if (Method == QuantMethod.Hqq)
        {
            if (Weights is not { Format: QuantFormat.Int, Symmetric: false })
                throw new QuantSharpException("--method hqq optimises zero points of asymmetric int weights: use --format int --asym and --w-bits < 16.");
            if (Weights.DoubleQuant is not null || Weights.Observer != ObserverKind.MinMax)
                throw new QuantSharpException("--method hqq has its own scale/zero handling: drop --double-quant (use --hqq-quant-scale) and --w-observer/--use-mse-search.");
            Hqq.Validate();
        }
        if (Weights is { GroupDim: 0 } && Method != QuantMethod.Rtn)
            throw new QuantSharpException($"--group-dim 0 (groups along the output dimension) is supported by --method rtn only, not {Method.ToString().ToLowerInvariant()}.");
        if (Weights is { DoubleQuant: not null } && Method == QuantMethod.Gptq && !Gptq.StaticGroups)
            throw new QuantSharpException("--double-quant with GPTQ needs static groups (drop --dynamic-groups): dynamic groups compute scales one group at a time.");
        if (TransformGroupSize <= 0)
            throw new QuantSharpException($"--transform-group-size {TransformGroupSize}: must be positive.");
        if (IsBlockMethod) BlockAlgorithms.Validate(this);
        if (NumSequences < 1) throw new QuantSharpException($"--num-sequences {NumSequences}: must be at least 1.");
        if (CalibBatchSize < 1) throw new QuantSharpException($"--calib-batch-size {CalibBatchSize}: must be at least 1.");
    }
}
