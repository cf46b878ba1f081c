using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.AutoRound;

/// <summary>
/// AutoRound (SignRound), block by block: every linear gets a rounding offset V (init 0, kept in [−0.5, 0.5]) added
/// to w/scale before rounding and per-group factors on its min and max (init 1, kept in [0, 1]); all are trained by
/// signed gradient descent (p −= lr·sign(∂L/∂p), lr decayed linearly to 0) on L = mean squared error between the
/// quantized block's output, fed the quantized stream, and the float block's output, fed the float stream. One
/// calibration batch per iteration; the parameters with the lowest loss seen are kept and the final quantized
/// weights recorded. With 0 iterations this is exactly RTN.
/// </summary>
public sealed class AutoRoundBlockAlgorithm(AutoRoundOptions options) : IBlockAlgorithm
{
    private readonly FloatReferenceStream _float = new();

    public AutoRoundOptions Options { get; } = options;

    /// <summary>Loss per iteration of the last block (tests check it is finite and improves).</summary>
    public List<double> LastLosses { get; } = [];

    /// <summary>Whether every gradient of the last block was finite.</summary>
    public bool LastGradientsFinite { get; private set; } = true;

    public void Apply(BlockContext context)
    {
        var (floatInputs, targets) = _float.Begin(context);
        var spec = context.Quantizer.Spec;
        var linears = context.Layer.Linears().ToList();
        var tuned = new Dictionary<string, Trainable>();
        foreach (var (name, _) in linears)
        {
            Tensor w = context.FloatWeight(name);
            long rows = w.shape[0], groups = w.shape[1] / SteIntQuantizer.GroupSizeOf(spec, w.shape[1]);
            tuned[name] = new Trainable(zeros_like(w, requires_grad: true), ones(rows, groups, 1, float32, w.device, requires_grad: Options.MinMaxTuning),
                ones(rows, groups, 1, float32, w.device, requires_grad: Options.MinMaxTuning));
        }
        LastLosses.Clear();
        LastGradientsFinite = true;
        int iters = Options.Iters;
        double lr = Options.LearningRate ?? 1.0 / Math.Max(1, iters), minMaxLr = Options.MinMaxLearningRate ?? lr;
        var order = new BatchOrder(context.Inputs.Count, Options.Seed + context.Layer.Index);
        double bestLoss = double.PositiveInfinity;
        try
        {
            for (int it = 0; it < iters; it++)
            {
                using var scope = NewDisposeScope();
                int b = order.Next();
                Tensor x = Options.QuantizedInputs ? context.Input(b) : floatInputs[b].to(context.Device);
                double loss;
                using (enable_grad())
                {
                    foreach (var (name, linear) in linears)
                    {
                        var t = tuned[name];
                        var (dq, p) = SteIntQuantizer.FakeQuantize(context.FloatWeight(name), spec, t.Offset, t.MinFactor, t.MaxFactor);
                        p.Dispose();
                        linear.WeightOverride = dq.to(context.ModelDType);
                    }
                    Tensor y = context.Forward(x);
                    Tensor l = (y.to(float32) - targets[b].to(context.Device).to(float32)).pow(2).mean();
                    l.backward();
                    loss = l.item<float>();
                }
                foreach (var (_, linear) in linears) linear.WeightOverride = null;
                LastLosses.Add(loss);
                if (loss < bestLoss)
                {
                    bestLoss = loss;
                    foreach (var t in tuned.Values) t.KeepAsBest();
                }
                double decay = 1.0 - (double)it / iters;
                foreach (var t in tuned.Values) LastGradientsFinite &= t.SignStep(lr * decay, minMaxLr * decay);
            }
        }
        finally
        {
            foreach (var (_, linear) in linears) linear.WeightOverride = null;
        }
        foreach (var (name, _) in linears)
        {
            using var scope = NewDisposeScope();
            var t = tuned[name];
            var (dq, p) = SteIntQuantizer.FakeQuantize(context.FloatWeight(name), spec, t.BestOffset, t.BestMin, t.BestMax);
            context.Record(name, dq.DetachFromDisposeScope(), p.DetachFromDisposeScope());
        }
        foreach (var t in tuned.Values) t.Dispose();
    }

    public void Dispose() => _float.Dispose();

    /// <summary>One linear's trained tensors and the copies with the best loss so far.</summary>
    private sealed class Trainable : IDisposable
    {
        public Trainable(Tensor offset, Tensor minFactor, Tensor maxFactor)
        {
            Offset = offset.DetachFromDisposeScope();
            MinFactor = minFactor.DetachFromDisposeScope();
            MaxFactor = maxFactor.DetachFromDisposeScope();
            BestOffset = offset.detach().clone().DetachFromDisposeScope();
            BestMin = minFactor.detach().clone().DetachFromDisposeScope();
            BestMax = maxFactor.detach().clone().DetachFromDisposeScope();
        }

        public Tensor Offset { get; }
        public Tensor MinFactor { get; }
        public Tensor MaxFactor { get; }
        public Tensor BestOffset { get; }
        public Tensor BestMin { get; }
        public Tensor BestMax { get; }

        public void KeepAsBest()
        {
            using var noGrad = no_grad();
            BestOffset.copy_(Offset);
            BestMin.copy_(MinFactor);
            BestMax.copy_(MaxFactor);
        }

        /// <summary>p −= lr·sign(grad), then the ranges; returns whether all gradients were finite.</summary>
        public bool SignStep(double lr, double minMaxLr)
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            bool finite = Step(Offset, lr, -0.5, 0.5);
            finite &= Step(MinFactor, minMaxLr, 0, 1);
            finite &= Step(MaxFactor, minMaxLr, 0, 1);
            return finite;
        }

        private static bool Step(Tensor p, double lr, double lo, double hi)
        {
            var g = p.grad;
            if (g is null) return true;
            bool finite = g.isfinite().all().item<bool>();
            p.sub_(g.sign().mul(lr)).clamp_(lo, hi);
            g.zero_();
            return finite;
        }

        public void Dispose()
        {
            Offset.Dispose(); MinFactor.Dispose(); MaxFactor.Dispose();
            BestOffset.Dispose(); BestMin.Dispose(); BestMax.Dispose();
        }
    }
}
