using System.Diagnostics;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// FlatQuant's layer-by-layer calibration. The first layer's inputs are the embedded calibration windows; for each
/// decoder layer the float layer's outputs on its float inputs are the targets (and the next layer's inputs). The
/// layer's transforms, add_diag scales and clip logits are fitted with AdamW on MSE(target, quantized output) — the
/// loss divided by its own detached value, as the reference does, so every step has unit scale — with cosine decay
/// to lr·1e-3. The trained layer is then reparameterised (<see cref="FlatQuantLayer.Reparameterize"/>) and its
/// merged weights quantized per channel (RTN, or GPTQ with Hessians of the transformed inputs).
/// </summary>
public static class FlatQuantCalibrator
{
    public static FlatQuantRuntime RuntimeOf(ModelConfig c, FlatQuantOptions o) =>
        new(o.ABits, !o.ActAsymmetric, o.KvCache, c.NumHeads, c.HeadDim);

    public static QuantSpec WeightSpecOf(FlatQuantOptions o) =>
        new(QuantFormat.Int, o.WBits, QuantSpec.PerChannel, true, ObserverKind.MinMax);

    /// <param name="progress">Receives one line per layer and epoch (layer, epoch, mean loss).</param>
    public static FlatQuantResult Run(CausalLM model, FlatQuantOptions options, int[][] calibration, Action<string>? progress = null)
    {
        options.Validate(model.Config);
        if (calibration.Length == 0) throw new QuantSharpException("FlatQuant needs calibration data (--calib FILE).");
        int len = calibration[0].Length;
        if (calibration.Any(c => c.Length != len)) throw new ArgumentException("calibration windows differ in length");
        var resume = options.ResumeDir is null ? null : FlatQuantResume.Open(options.ResumeDir, model, options, len, calibration.Length);
        var total = Stopwatch.StartNew();
        var result = new FlatQuantResult(model, options);
        var device = model.Device;
        var runtime = RuntimeOf(model.Config, options);
        List<Tensor> hidden = Embed(model, calibration, options.BatchSize);
        var (c0, s0) = model.Rotary(0, len);
        Tensor cos = c0.to(ScalarType.Float32).DetachFromDisposeScope(), sin = s0.to(ScalarType.Float32).DetachFromDisposeScope();
        c0.Dispose(); s0.Dispose();
        try
        {
            for (int i = 0; i < model.Layers.Count; i++)
            {
                var layer = model.Layers[i];
                var clock = Stopwatch.StartNew();
                List<Tensor> targets = FloatOutputs(layer, hidden, cos, sin);
                using var flat = new FlatQuantLayer(layer, model.Config, options, device);
                var saved = resume?.TryLoad(i);
                double first = double.NaN, last = double.NaN;
                if (saved is not null)
                {
                    flat.Load(saved, options.ResumeDir!);
                    foreach (var t in saved.Values) t.Dispose();
                    progress?.Invoke($"layer {i + 1}/{model.Layers.Count}: resumed from {options.ResumeDir}");
                }
                else
                {
                    InitDiag(flat, hidden, cos, sin);
                    (first, last) = Train(flat, hidden, targets, cos, sin, options, i, model.Layers.Count, progress);
                    resume?.Save(i, flat.NamedParameters());
                }

                var (online, merged) = flat.Reparameterize(runtime);
                result.Layers.Add(online);
                if (options.QuantizesWeights) QuantizeWeights(layer, merged, hidden, cos, sin, options, result);
                foreach (var t in merged.Values) t.Dispose();
                foreach (var t in hidden) t.Dispose();
                hidden = targets;
                result.Reports.Add(new FlatQuantLayerReport(i, first, last, saved is not null, clock.Elapsed.TotalSeconds));
            }
        }
        finally
        {
            foreach (var t in hidden) t.Dispose();
            cos.Dispose();
            sin.Dispose();
        }
        result.Seconds = total.Elapsed.TotalSeconds;
        return result;
    }

    /// <summary>Embedded calibration windows in batches, float32 on the model's device.</summary>
    private static List<Tensor> Embed(CausalLM model, int[][] calibration, int batchSize)
    {
        using var _ = no_grad();
        var batches = new List<Tensor>();
        int len = calibration[0].Length;
        for (int start = 0; start + batchSize <= calibration.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var ids = tensor(calibration.Skip(start).Take(batchSize).SelectMany(w => w.Select(t => (long)t)).ToArray(), [batchSize, len], ScalarType.Int64);
            batches.Add(model.EmbedTokens.forward(ids.to(model.Device)).to(ScalarType.Float32).DetachFromDisposeScope());
        }
        return batches;
    }

    /// <summary>The float layer (the model's own module, no hooks yet) on every batch, in float32.</summary>
    private static List<Tensor> FloatOutputs(DecoderLayer layer, List<Tensor> inputs, Tensor cos, Tensor sin)
    {
        using var _ = no_grad();
        var dtype = layer.InputLayerNorm.Weight.dtype;
        using var c = cos.to(dtype);
        using var s = sin.to(dtype);
        return inputs.Select(x =>
        {
            using var scope = NewDisposeScope();
            return layer.Forward(x.to(dtype), c, s).to(ScalarType.Float32).DetachFromDisposeScope();
        }).ToList();
    }

    private static void InitDiag(FlatQuantLayer flat, List<Tensor> inputs, Tensor cos, Tensor sin)
    {
        Tensor? q = null, g = null, d = null;
        foreach (var x in inputs)
        {
            var (a, b, c) = flat.InputAbsMax(x, cos, sin);
            q = Max(q, a); g = Max(g, b); d = Max(d, c);
        }
        flat.InitDiag(q!, g!, d!);
        q!.Dispose(); g!.Dispose(); d!.Dispose();

        static Tensor Max(Tensor? acc, Tensor x)
        {
            if (acc is null) return x;
            var m = maximum(acc, x).DetachFromDisposeScope();
            acc.Dispose();
            x.Dispose();
            return m;
        }
    }

    /// <summary>AdamW (decoupled weight decay, PyTorch's defaults β = (0.9, 0.999), ε = 1e-8) with cosine decay.</summary>
    private static (double First, double Last) Train(FlatQuantLayer flat, List<Tensor> inputs, List<Tensor> targets,
        Tensor cos, Tensor sin, FlatQuantOptions o, int layer, int layers, Action<string>? progress)
    {
        var (transforms, clips) = flat.TrainableParameters();
        var groups = new[] { (Params: transforms, Lr: o.LearningRate), (Params: clips, Lr: o.LearningRate * 10) };
        var optimizer = new AdamW(groups.SelectMany(gp => gp.Params.Select(p => (p, gp.Lr))).ToList(), o.WeightDecay);
        long totalSteps = (long)o.Epochs * inputs.Count, step = 0;
        double etaMin = o.LearningRate * 1e-3;
        double first = double.NaN, last = double.NaN;
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            double sum = 0;
            for (int j = 0; j < inputs.Count; j++)
            {
                using var scope = NewDisposeScope();
                // CosineAnnealingLR: every group decays from its own base lr towards the one eta_min.
                double phase = (1 + Math.Cos(Math.PI * step / Math.Max(1, totalSteps))) / 2;
                Tensor output = flat.Forward(inputs[j], cos, sin, quantize: true);
                Tensor loss = nn.functional.mse_loss(output, targets[j]);
                double value = loss.item<float>();
                if (!double.IsFinite(value))
                    throw new QuantSharpException($"FlatQuant: layer {layer} produced a non-finite loss at epoch {epoch + 1}; lower --lr.");
                sum += value;
                (loss / loss.detach()).backward();
                optimizer.Step(lr => etaMin + (lr - etaMin) * phase);
                step++;
            }
            double mean = sum / inputs.Count;
            if (epoch == 0) first = mean;
            last = mean;
            progress?.Invoke($"layer {layer + 1}/{layers} epoch {epoch + 1}/{o.Epochs} loss {mean:E4}");
        }
        optimizer.Dispose();
        return (first, last);
    }

    private static void QuantizeWeights(DecoderLayer layer, Dictionary<string, Tensor> merged, List<Tensor> inputs,
        Tensor cos, Tensor sin, FlatQuantOptions o, FlatQuantResult result)
    {
        var quantizer = WeightQuantizer.Create(WeightSpecOf(o));
        Dictionary<string, HessianAccumulator>? hessians = null;
        if (o.Gptq)
        {
            hessians = new();
            foreach (var (name, linear) in layer.Linears())
            {
                string slot = Quantization.LayerwiseQuantizer.SlotOf(name);
                if (hessians.ContainsKey(slot)) continue;
                var acc = new HessianAccumulator((int)linear.InFeatures, linear.Weight.device, $"model.layers.{layer.Index}.{name}");
                hessians[slot] = acc;
                linear.InputObserver = acc.Add;
            }
            FloatOutputs(layer, inputs, cos, sin).ForEach(t => t.Dispose());
            foreach (var (_, linear) in layer.Linears()) linear.InputObserver = null;
        }
        foreach (var group in layer.Linears().GroupBy(l => Quantization.LayerwiseQuantizer.SlotOf(l.Name)))
        {
            using var scope = NewDisposeScope();
            var members = group.ToList();
            List<(Tensor Weight, GroupParams Params)> solved;
            if (hessians is not null)
            {
                var r = GptqSolver.QuantizeShared(members.Select(m => merged[m.Name]).ToList(), hessians[group.Key].Hessian, quantizer,
                    o.GptqOptions with { LayerName = $"model.layers.{layer.Index}.{group.Key}" }, members.Select(_ => (Tensor?)null).ToList());
                solved = r.Select(x => { x.Permutation?.Dispose(); return (x.Weight, x.Params); }).ToList();
            }
            else
            {
                solved = members.Select(m =>
                {
                    var p = quantizer.ComputeParams(merged[m.Name], null, $"model.layers.{layer.Index}.{m.Name}");
                    return (quantizer.QuantizeDequantize(merged[m.Name], p), p);
                }).ToList();
            }
            for (int k = 0; k < members.Count; k++)
            {
                var (name, linear) = members[k];
                linear.ReplaceWeight(solved[k].Weight.to(linear.Weight.dtype).DetachFromDisposeScope());
                result.WeightParams[$"model.layers.{layer.Index}.{name}"] = solved[k].Params.DetachFromDisposeScope();
            }
        }
        if (hessians is not null) foreach (var h in hessians.Values) h.Dispose();
    }

    /// <summary>A minimal AdamW over (parameter, base lr) pairs; the schedule maps a base lr to this step's lr.</summary>
    private sealed class AdamW(List<(Parameter P, double Lr)> parameters, double weightDecay) : IDisposable
    {
        private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;
        private readonly Tensor[] _m = parameters.Select(p => zeros_like(p.P).DetachFromDisposeScope()).ToArray();
        private readonly Tensor[] _v = parameters.Select(p => zeros_like(p.P).DetachFromDisposeScope()).ToArray();
        private int _t;

        public void Step(Func<double, double> schedule)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            _t++;
            double c1 = 1 - Math.Pow(Beta1, _t), c2 = 1 - Math.Pow(Beta2, _t);
            for (int i = 0; i < parameters.Count; i++)
            {
                var (p, baseLr) = parameters[i];
                Tensor? g = p.grad;
                if (g is null) continue;
                double lr = schedule(baseLr);
                p.mul_(1 - lr * weightDecay);
                _m[i].mul_(Beta1).add_(g, alpha: 1 - Beta1);
                _v[i].mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
                Tensor denom = (_v[i] / c2).sqrt_().add_(Eps);
                p.addcdiv_(_m[i], denom, value: -lr / c1);
                g.zero_();
            }
        }

        public void Dispose()
        {
            foreach (var t in _m) t.Dispose();
            foreach (var t in _v) t.Dispose();
        }
    }
}
