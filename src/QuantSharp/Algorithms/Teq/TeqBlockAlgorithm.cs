using QuantSharp.Algorithms.EquivalentScaling;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.Teq;

/// <summary>
/// Trainable equivalent transformation: per fold point a channel scale t (init 1) is trained with Adam so that the
/// block with fake-quantized q(W·t)/t weights (rounding passed straight through) reproduces the float block's output
/// (mean squared error; quantized inputs from earlier blocks, float targets from the float stream). After training,
/// t (clipped to ≥ 1e-5 as INC does) is folded into the producer and consumers, and the pipeline's RTN (or GPTQ)
/// quantizes the folded weights.
/// </summary>
public sealed class TeqBlockAlgorithm(TeqOptions options) : IBlockAlgorithm
{
    private readonly FloatReferenceStream _float = new();

    public TeqOptions Options { get; } = options;

    /// <summary>Training loss per step of the last block (tests check it is finite and falls).</summary>
    public List<double> LastLosses { get; } = [];

    public void Apply(BlockContext context)
    {
        var (_, targets) = _float.Begin(context);
        var points = ScaleFoldPoint.Of(context.Layer, context.ModelConfig, tieGroupedQuery: true);
        var spec = context.Quantizer.Spec;
        var scales = points.ToDictionary(p => p.Slot, p => ones(p.Width, float32, context.Device, requires_grad: true).DetachFromDisposeScope());
        var moments = scales.ToDictionary(kv => kv.Key, kv => (M: zeros_like(kv.Value).DetachFromDisposeScope(), V: zeros_like(kv.Value).DetachFromDisposeScope()));
        var consumerOf = points.SelectMany(p => p.Consumers.Select(c => (c, p))).ToDictionary(x => x.c, x => x.p);
        var linears = context.Layer.Linears().ToList();
        // Linears no fold point scales are quantized once; their fixed RTN weight takes part in every step.
        var fixedWeights = linears.Where(l => !consumerOf.ContainsKey(l.Name)).ToDictionary(l => l.Name, l =>
        {
            var (dq, p) = SteIntQuantizer.FakeQuantize(context.FloatWeight(l.Name), spec);
            p.Dispose();
            return dq.to(context.ModelDType).DetachFromDisposeScope();
        });
        LastLosses.Clear();
        var order = new BatchOrder(context.Inputs.Count, Options.Seed + context.Layer.Index);
        int warmup = (int)(Options.WarmupRatio * Options.Steps);
        try
        {
            for (int step = 0; step < Options.Steps; step++)
            {
                using var scope = NewDisposeScope();
                int b = order.Next();
                double loss;
                using (enable_grad())
                {
                    foreach (var (name, linear) in linears)
                    {
                        if (fixedWeights.TryGetValue(name, out var fw)) { linear.WeightOverride = fw; continue; }
                        var point = consumerOf[name];
                        Tensor columns = point.Expand(scales[point.Slot]).unsqueeze(0);
                        var (dq, p) = SteIntQuantizer.FakeQuantize(context.FloatWeight(name).mul(columns), spec);
                        p.Dispose();
                        linear.WeightOverride = dq.div(columns).to(context.ModelDType);
                    }
                    Tensor y = context.Forward(context.Input(b));
                    Tensor l = (y.to(float32) - targets[b].to(context.Device).to(float32)).pow(2).mean();
                    l.backward();
                    loss = l.item<float>();
                }
                foreach (var (_, linear) in linears) linear.WeightOverride = null;
                LastLosses.Add(loss);
                double lr = step < warmup
                    ? Options.LearningRate * (step + 1) / Math.Max(1, warmup)
                    : Options.LearningRate * Math.Max(0.0, (double)(Options.Steps - step) / Math.Max(1, Options.Steps - warmup));
                AdamStep(scales, moments, lr, step + 1);
            }
        }
        finally
        {
            foreach (var (_, linear) in linears) linear.WeightOverride = null;
            foreach (var t in fixedWeights.Values) t.Dispose();
            foreach (var (m, v) in moments.Values) { m.Dispose(); v.Dispose(); }
        }
        foreach (var point in points)
        {
            using var scope = NewDisposeScope();
            point.Fold(context, scales[point.Slot].detach().clamp_min(1e-5f));
        }
        foreach (var t in scales.Values) t.Dispose();
    }

    /// <summary>Adam (no weight decay, ε = 1e-8) on the scales, in place.</summary>
    private void AdamStep(Dictionary<string, Tensor> scales, Dictionary<string, (Tensor M, Tensor V)> moments, double lr, int t)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        double b1 = Options.Beta1, b2 = Options.Beta2;
        foreach (var (slot, p) in scales)
        {
            var g = p.grad;
            if (g is null) continue;
            var (m, v) = moments[slot];
            m.mul_(b1).add_(g, alpha: 1 - b1);
            v.mul_(b2).add_(g * g, alpha: 1 - b2);
            Tensor mHat = m / (1 - Math.Pow(b1, t)), vHat = v / (1 - Math.Pow(b2, t));
            p.sub_(mHat.div(vHat.sqrt().add(1e-8)).mul(lr));
            g.zero_();
        }
    }

    public void Dispose() => _float.Dispose();
}
