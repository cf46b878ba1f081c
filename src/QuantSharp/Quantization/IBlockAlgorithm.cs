using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// A quantization algorithm that needs a whole decoder block and its calibration inputs (AWQ, TEQ, AutoRound). The
/// layer-wise pipeline creates one per run and calls <see cref="Apply"/> for each layer after calibration and before
/// per-linear quantization: it may change float weights (fold equivalent scales; RTN or GPTQ then quantizes them)
/// or record final quantized weights itself (those linears are then skipped).
/// </summary>
public interface IBlockAlgorithm : IDisposable
{
    void Apply(BlockContext context);
}

/// <summary>What a block algorithm sees of one decoder layer and what it may change.</summary>
public sealed class BlockContext
{
    private readonly Dictionary<string, Tensor> _floatWeights;
    private readonly Action<string, DecoderLinear, Tensor, GroupParams> _record;
    private readonly HashSet<string> _recorded = [];

    internal BlockContext(DecoderLayer layer, ModelConfig modelConfig, ScalarType modelDType, IReadOnlyList<Tensor> inputs,
        Tensor cos, Tensor sin, Device device, QuantizationConfig config, IWeightQuantizer quantizer,
        Dictionary<string, Tensor> floatWeights, Action<string, DecoderLinear, Tensor, GroupParams> record)
    {
        Layer = layer; ModelConfig = modelConfig; ModelDType = modelDType; Inputs = inputs; Cos = cos; Sin = sin;
        Device = device; Config = config; Quantizer = quantizer; _floatWeights = floatWeights; _record = record;
    }

    public DecoderLayer Layer { get; }
    public ModelConfig ModelConfig { get; }
    public ScalarType ModelDType { get; }

    /// <summary>
    /// The block's calibration inputs, one tensor [batch, seq, hidden] per batch (outputs of the earlier, already
    /// quantized blocks, or of whatever an algorithm set as <see cref="NextInputs"/>); possibly in CPU memory.
    /// </summary>
    public IReadOnlyList<Tensor> Inputs { get; }

    public Tensor Cos { get; }
    public Tensor Sin { get; }
    public Device Device { get; }
    public QuantizationConfig Config { get; }
    public IWeightQuantizer Quantizer { get; }

    /// <summary>Outputs of this block to feed the next one instead of re-running the quantized block (AWQ: INC feeds float outputs).</summary>
    public List<Tensor>? NextInputs { get; set; }

    /// <summary>Names of the linears whose final quantized weight was recorded.</summary>
    public IReadOnlySet<string> Recorded => _recorded;

    /// <summary>A linear's current float32 weight (owned by the pipeline; do not dispose).</summary>
    public Tensor FloatWeight(string name) => _floatWeights[name];

    /// <summary>Replaces a linear's float weight (float32 kept for quantization, the model dtype in the layer).</summary>
    public void SetFloatWeight(string name, Tensor w32)
    {
        var linear = Linear(name);
        var old = _floatWeights[name];
        _floatWeights[name] = w32.to(float32, copy: true).DetachFromDisposeScope();
        old.Dispose();
        linear.ReplaceWeight(w32.to(ModelDType, copy: true).DetachFromDisposeScope());
    }

    /// <summary>Keeps <paramref name="dequantized"/> (float32) as the linear's final weight; takes ownership of <paramref name="p"/>.</summary>
    public void Record(string name, Tensor dequantized, GroupParams p)
    {
        if (!_recorded.Add(name)) throw new InvalidOperationException($"{name} recorded twice");
        _record(name, Linear(name), dequantized, p);
    }

    public DecoderLinear Linear(string name) => Layer.Linears().First(l => l.Name == name).Linear;

    /// <summary>Batch <paramref name="i"/> of the inputs on the compute device.</summary>
    public Tensor Input(int i) => Inputs[i].device == Device ? Inputs[i].alias() : Inputs[i].to(Device);

    /// <summary>The block's output for input batch <paramref name="x"/> with its current weights and overrides.</summary>
    public Tensor Forward(Tensor x) => Layer.Forward(x, Cos, Sin);
}
