using QuantSharp.Calibration;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms.Block;

/// <summary>
/// micro-qwen3 in float32 with a block context for decoder layer 0: a few short calibration windows embedded in
/// batches, float32 copies of the weights, and recorded weights kept in <see cref="Recorded"/>.
/// </summary>
internal sealed class BlockFixture : IDisposable
{
    public CausalLM Model { get; }
    public List<Tensor> Inputs { get; }
    public Tensor Cos { get; }
    public Tensor Sin { get; }
    public Dictionary<string, Tensor> FloatWeights { get; } = new();
    public Dictionary<string, Tensor> Recorded { get; } = new();
    public QuantizationConfig Config { get; }
    public IWeightQuantizer Quantizer { get; }

    public BlockFixture(QuantSpec spec, int windows = 8, int length = 64, int batch = 4)
    {
        Model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        Config = new QuantizationConfig { Method = QuantMethod.Rtn, Weights = spec, CalibBatchSize = batch };
        Quantizer = WeightQuantizer.Create(spec);
        var calib = CalibrationData.Windows(Golden.EvalTokens()[..100_000], windows, length, 42);
        using var _ = no_grad();
        Inputs = [];
        for (int s = 0; s < windows; s += batch)
        {
            var ids = tensor(calib.Skip(s).Take(batch).SelectMany(w => w.Select(t => (long)t)).ToArray(), [batch, length], int64);
            Inputs.Add(Model.EmbedTokens.forward(ids).DetachFromDisposeScope());
        }
        (Cos, Sin) = Model.Rotary(0, length);
        foreach (var (name, linear) in Layer.Linears()) FloatWeights[name] = linear.Weight.to(float32, copy: true).DetachFromDisposeScope();
    }

    public QuantSharp.Models.Layers.DecoderLayer Layer => Model.Layers[0];

    public BlockContext Context() => new(Layer, Model.Config, Model.DType, Inputs, Cos, Sin, CPU, Config, Quantizer, FloatWeights,
        (name, linear, dq, p) =>
        {
            p.Dispose();
            Recorded[name] = dq;
            linear.ReplaceWeight(dq.clone().DetachFromDisposeScope());
        });

    /// <summary>Block outputs for every input batch with the layer's current weights.</summary>
    public List<Tensor> Outputs()
    {
        using var _ = no_grad();
        return Inputs.Select(x => Layer.Forward(x, Cos, Sin).DetachFromDisposeScope()).ToList();
    }

    /// <summary>RTN for every linear not recorded yet (what the pipeline does after a block algorithm).</summary>
    public void QuantizeRemainingWithRtn()
    {
        using var _ = no_grad();
        foreach (var (name, linear) in Layer.Linears())
        {
            if (Recorded.ContainsKey(name)) continue;
            using var p = Quantizer.ComputeParams(FloatWeights[name]);
            linear.ReplaceWeight(Quantizer.QuantizeDequantize(FloatWeights[name], p).DetachFromDisposeScope());
        }
    }

    public static double Mse(IReadOnlyList<Tensor> a, IReadOnlyList<Tensor> b) =>
        a.Zip(b).Sum(p => (p.First - p.Second).pow(2).mean().item<float>()) / a.Count;

    public void Dispose()
    {
        foreach (var t in Inputs) t.Dispose();
        foreach (var t in FloatWeights.Values) t.Dispose();
        foreach (var t in Recorded.Values) t.Dispose();
        Cos.Dispose(); Sin.Dispose();
        Model.Dispose();
    }
}
