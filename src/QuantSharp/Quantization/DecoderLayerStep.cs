using QuantSharp.Algorithms.Gptq;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;
using static QuantSharp.Quantization.LayerwiseQuantizer;

namespace QuantSharp.Quantization;

/// <summary>
/// What the layer-wise pipeline does to one decoder layer: install the online rotations and activation quantizers,
/// run the calibration batches through it (Hessians per input slot, NVFP activation global scales), run a block
/// algorithm, quantize the weights (RTN, HQQ or GPTQ, each linear with the configuration it resolves to, stage by stage
/// for true-sequential GPTQ), and produce the next layer's inputs from the quantized layer. One implementation for
/// the in-memory pipeline (<see cref="LayerwiseQuantizer"/>: the layers of a loaded model) and the low-memory mode
/// (<see cref="LowMemoryQuantizer"/>: each layer built from the checkpoint, written and freed), so both give the same
/// weights bit for bit.
/// </summary>
internal sealed class DecoderLayerStep(ModelConfig model, ScalarType dtype, QuantizationConfig config, Device device,
    IBlockAlgorithm? blockAlgorithm, OutOfMemoryFallback oom, PhaseClock clock, List<LayerQuantReport> reports, List<string> warnings,
    Action<int, int, string>? progress, Action<int, IReadOnlyDictionary<string, Tensor>>? onHessians)
{
    private int LayerCount => model.NumLayers;

    /// <summary>
    /// Calibrates and quantizes <paramref name="layer"/> in place (it must already be on the compute device) and returns
    /// its quantization state, plus the next layer's inputs when a block algorithm produced them. A CUDA out-of-memory
    /// error puts the layer back as it was and runs it again once with the activations in CPU memory.
    /// </summary>
    /// <param name="hidden">The calibration activations entering the layer (null without calibration).</param>
    public (LayerQuantState State, List<Tensor>? BlockOutputs) Quantize(DecoderLayer layer, List<Tensor>? hidden, Tensor? cos, Tensor? sin)
    {
        int i = layer.Index;
        using var snapshot = oom.CanRetryLayers && !oom.Used ? new OutOfMemoryFallback.LayerSnapshot(layer) : null;
        while (true)
        {
            string phase = "calibrating";
            var state = new LayerQuantState(i);
            try
            {
                progress?.Invoke(i, LayerCount, "calibrate");
                oom.At(i, "calibrate");
                InstallOnlineHooks(model, dtype, layer, config, state, device);
                // Fold the rotations into the weights before calibrating: the online hooks rotate activations from
                // here on, so the layer computes what the float model did only once its weights carry M⁻ᵀ. (Calibrating
                // with rotated activations but unrotated weights gives o_proj, gate/up and down_proj wrong inputs,
                // hence wrong Hessians and NVFP activation scales.) The float32 folds are kept for quantization.
                Dictionary<string, Tensor> folded = FoldRotations(layer, state);

                // One stage normally; true-sequential GPTQ has one stage per input slot, each calibrated on the layer
                // as the earlier stages left it (their linears already quantized), so o_proj, gate/up and down_proj
                // see the inputs the quantized layer will give them.
                string[][] stages = config.TrueSequential && config.UsesGptq ? Slots.Select(s => new[] { s }).ToArray() : [Slots];
                BlockContext? block = null;
                for (int stageIndex = 0; stageIndex < stages.Length; stageIndex++)
                {
                    string[] stage = stages[stageIndex];
                    Dictionary<string, HessianAccumulator>? hessians = null;
                    if (config.NeedsCalibration && !config.IsBlockMethod)
                    {
                        if (config.UsesGptq) hessians = AttachHessianObservers(layer, stage);
                        clock.Time("calibrate", () => { RunLayer(layer, hidden!, cos!, sin!, device, keepOutputs: false); return 0; });
                        DetachObservers(layer);
                        if (hessians is not null)
                        {
                            var bySlot = hessians.ToDictionary(kv => kv.Key, kv => kv.Value.Hessian);
                            if (onHessians is not null) onHessians(layer.Index, bySlot);
                            else DebugDump.Hessians(layer.Index, bySlot);
                        }
                    }
                    if (stageIndex == 0) state.FreezeActivationScales();

                    if (stageIndex == 0 && blockAlgorithm is not null)
                    {
                        progress?.Invoke(i, LayerCount, "block");
                        block = new BlockContext(layer, model, dtype, hidden!, cos!, sin!, device, config,
                            WeightQuantizer.Create(config.Weights!), folded,
                            (name, linear, dq, p) => Record(layer, state, name, linear, dq, p,
                                QuantError.Relative(folded[name], dq, null), hessianWeighted: false, warning: null));
                        clock.Time("block", () => { blockAlgorithm.Apply(block); return 0; });
                    }

                    if (config.QuantizesWeights)
                    {
                        progress?.Invoke(i, LayerCount, "quantize");
                        phase = "quantizing";
                        oom.At(i, "solve");
                        clock.Time("solve", () => { QuantizeWeights(layer, state, folded, hessians, stage, block?.Recorded); return 0; });
                    }
                    if (hessians is not null) foreach (var h in hessians.Values) h.Dispose();
                }
                foreach (var t in folded.Values) t.Dispose();
                return (state, block?.NextInputs);
            }
            catch (Exception e)
            {
                // Not an exception filter: the failed attempt's dispose scopes must unwind before memory is freed.
                DetachObservers(layer);
                state.Dispose();
                if (!oom.TryRecover(e, i, phase, hidden)) throw;
                string prefix = $"model.layers.{i}.";
                reports.RemoveAll(r => r.Name.StartsWith(prefix, StringComparison.Ordinal));
                warnings.RemoveAll(w => w.StartsWith(prefix, StringComparison.Ordinal));
                snapshot!.Restore(layer);
            }
        }
    }

    /// <summary>
    /// The next layer's calibration inputs: a block algorithm's own outputs when it produced them, else the quantized
    /// layer re-run on <paramref name="hidden"/> (batch by batch, in place). The last layer's outputs are not needed.
    /// </summary>
    public List<Tensor>? Advance(DecoderLayer layer, List<Tensor>? hidden, List<Tensor>? blockOutputs, Tensor? cos, Tensor? sin)
    {
        int i = layer.Index;
        if (blockOutputs is not null)
        {
            foreach (var t in hidden!) t.Dispose();
            return blockOutputs;
        }
        if (hidden is null || i == LayerCount - 1) return hidden;
        progress?.Invoke(i, LayerCount, "propagate");
        hidden = clock.Time("rerun", () => RunLayer(layer, hidden, cos!, sin!, device, keepOutputs: true, oom)!);
        NumericGuards.CheckActivations(hidden, $"the output of decoder layer {i} (model.layers.{i})");
        return hidden;
    }

    /// <summary>
    /// Runs every calibration batch through one layer. With <paramref name="keepOutputs"/> each input batch is replaced
    /// by its output in place (the list is returned), so at any moment one set of activations is held; a CUDA
    /// out-of-memory error then moves them all to CPU memory and continues with the batch that failed.
    /// </summary>
    private static List<Tensor>? RunLayer(DecoderLayer layer, List<Tensor> inputs, Tensor cos, Tensor sin, Device device, bool keepOutputs,
        OutOfMemoryFallback? oom = null)
    {
        for (int i = 0; i < inputs.Count; i++)
        {
            while (true)
            {
                try
                {
                    using var scope = NewDisposeScope();
                    if (keepOutputs) oom?.At(layer.Index, "rerun");
                    var x = inputs[i].device == device ? inputs[i] : inputs[i].to(device);
                    var y = layer.Forward(x, cos, sin);
                    if (keepOutputs)
                    {
                        var output = y.to(inputs[i].device).DetachFromDisposeScope();
                        inputs[i].Dispose();
                        inputs[i] = output;
                    }
                    break;
                }
                catch (Exception e)
                {
                    if (!keepOutputs || oom is null || !oom.TryRecover(e, layer.Index, "producing the next layer's inputs", inputs)) throw;
                }
            }
        }
        return keepOutputs ? inputs : null;
    }

    /// <summary>Creates the layer's rotations, activation quantizers and KV-cache quantizer and attaches them.</summary>
    internal static void InstallOnlineHooks(ModelConfig model, ScalarType dtype, DecoderLayer layer, QuantizationConfig config,
        LayerQuantState state, Device device)
    {
        int hidden = model.HiddenSize, ffn = model.IntermediateSize;
        int oWidth = model.NumHeads * model.HeadDim;
        var widths = new Dictionary<string, int> { ["qkv"] = hidden, ["o"] = oWidth, ["gate_up"] = hidden, ["down"] = ffn };
        for (int s = 0; s < Slots.Length; s++)
        {
            string slot = Slots[s];
            if (config.Transform != TransformKind.Identity)
            {
                int g = Math.Min(config.TransformGroupSize, widths[slot]);
                long seed = config.TransformSeed + layer.Index * 4L + s;
                state.Transforms[slot] = BlockTransform.Create(config.Transform, widths[slot], g, seed, device, dtype,
                    config.TransformRandomSigns);
            }
            if (config.Activations is not null)
                state.ActivationQuantizers[slot] = new ActivationQuantizerHook(config.Activations, dynamicGlobalScale: config.DynamicActivationGlobalScale);
        }
        if (config.KvCache is { } kv && (kv.QuantizesKeys || kv.QuantizesValues))
            state.KvCache = CreateKvCacheHook(model, layer, config, kv);
        state.Attach(layer);
    }

    /// <summary>
    /// KV-cache quantizer of one layer. With a rotation configured (QuaRot-style runs), q/k and v are also rotated per
    /// head by an orthogonal head_dim block of the same kind, so outliers are spread before the cache is quantized.
    /// </summary>
    private static KvCacheHook CreateKvCacheHook(ModelConfig model, DecoderLayer layer, QuantizationConfig config, KvCacheSpec kv)
    {
        int hd = model.HeadDim;
        if (config.Transform == TransformKind.Identity) return new KvCacheHook(kv, hd);
        using var scope = NewDisposeScope();
        using var t = BlockTransform.Create(config.Transform, hd, Math.Min(config.TransformGroupSize, hd),
            config.TransformSeed + 1_000_003L + layer.Index, layer.SelfAttn.QProj.Weight.device, float32, config.TransformRandomSigns);
        Tensor m = t.DenseMatrix();
        // V is rotated by R and un-rotated by Rᵀ, which is only the inverse for orthogonal kinds (not fast_food).
        return new KvCacheHook(kv, hd, keyTransform: m, valueRotation: t.IsOrthogonal ? m : null);
    }

    private static Dictionary<string, HessianAccumulator> AttachHessianObservers(DecoderLayer layer, string[] slots)
    {
        var h = new Dictionary<string, HessianAccumulator>();
        foreach (var (name, linear) in layer.Linears())
        {
            string slot = SlotOf(name);
            if (!slots.Contains(slot)) continue;
            // q/k/v (and gate/up) read the same input: one Hessian each, observed on the first of them.
            if (h.ContainsKey(slot)) continue;
            var acc = new HessianAccumulator((int)linear.InFeatures, linear.Weight.device, $"model.layers.{layer.Index}.{name}");
            h[slot] = acc;
            linear.InputObserver = acc.Add;
        }
        return h;
    }

    private static void DetachObservers(DecoderLayer layer)
    {
        foreach (var (_, linear) in layer.Linears()) linear.InputObserver = null;
    }

    /// <summary>
    /// Replaces each linear's weight by W·M⁻ᵀ of its slot's rotation (rounded once to the model dtype) and returns the
    /// float32 W·M⁻ᵀ of every linear (a float32 copy of W where its slot has no rotation): the NVFP global scale and
    /// the quantizer work on these unrounded folds.
    /// </summary>
    private Dictionary<string, Tensor> FoldRotations(DecoderLayer layer, LayerQuantState state)
    {
        var folded = new Dictionary<string, Tensor>();
        foreach (var (name, linear) in layer.Linears())
        {
            using var scope = NewDisposeScope();
            Tensor w32 = linear.Weight.to(float32);
            var t = state.Transforms.GetValueOrDefault(SlotOf(name));
            Tensor f = t is null ? (w32.dtype == linear.Weight.dtype ? w32.clone() : w32) : t.FoldIntoWeight(w32);
            if (t is not null) linear.ReplaceWeight(f.to(dtype, copy: true).DetachFromDisposeScope());
            folded[name] = f.DetachFromDisposeScope();
        }
        return folded;
    }

    /// <summary>Quantizes the linears of <paramref name="slots"/>, each with the configuration it resolves to.</summary>
    private void QuantizeWeights(DecoderLayer layer, LayerQuantState state, Dictionary<string, Tensor> folded,
        Dictionary<string, HessianAccumulator>? hessians, string[] slots, IReadOnlySet<string>? alreadyQuantized = null)
    {
        // A block algorithm (AutoRound, AWQ with clipping) may have produced some linears' final weights already.
        var byConfig = layer.Linears().Where(l => slots.Contains(SlotOf(l.Name)) && alreadyQuantized?.Contains(l.Name) != true)
            .GroupBy(l => config.For($"model.layers.{layer.Index}.{l.Name}"));
        foreach (var group in byConfig)
        {
            // A configuration without a weight spec (a local dtype fp32/bf16 rule) leaves its linears in float.
            if (group.Key.Weights is null) continue;
            QuantizeWeights(layer, state, folded, hessians, group.Key, group.ToList());
        }
    }

    private void QuantizeWeights(DecoderLayer layer, LayerQuantState state, Dictionary<string, Tensor> folded,
        Dictionary<string, HessianAccumulator>? hessians, QuantizationConfig linearConfig, List<(string Name, DecoderLinear Linear)> linears)
    {
        var spec = linearConfig.Weights!;
        var quantizer = WeightQuantizer.Create(spec);

        var globalScales = new Dictionary<string, Tensor?>();
        foreach (var (name, _) in linears) globalScales[name] = quantizer.ComputeGlobalScale(folded[name])?.DetachFromDisposeScope();
        if (linearConfig.FuseGlobalScale && spec.Format == QuantFormat.NvFp)
        {
            FuseMin(globalScales, ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]);
            FuseMin(globalScales, ["mlp.gate_proj", "mlp.up_proj"]);
        }

        if (linearConfig.Method == QuantMethod.Gptq)
        {
            // Linears that read the same input share a Hessian: one solve (one factorisation, one column loop) each.
            foreach (var group in linears.GroupBy(l => SlotOf(l.Name)))
            {
                using var scope = NewDisposeScope();
                var members = group.ToList();
                string slotName = $"model.layers.{layer.Index}.{string.Join("+", members.Select(m => m.Name))}";
                Tensor h = hessians![group.Key].Hessian;
                // The solve takes the slot's Hessian over, and each slot's Hessian and float32 folds are freed as soon
                // as it is solved: a 70B-shaped layer's down_proj Hessian alone is 3.3 GB. With --allow-rtn-fallback the
                // solve works on a copy instead, since the fallback still needs H (for its error report). Only when this
                // configuration has the whole slot: per-layer rules may give the slot's other linears another one.
                bool wholeSlot = layer.Linears().Count(l => SlotOf(l.Name) == group.Key) == members.Count;
                IReadOnlyList<GptqResult> solved;
                try
                {
                    solved = GptqSolver.QuantizeShared(members.Select(m => folded[m.Name]).ToList(), h, quantizer,
                        linearConfig.Gptq with { LayerName = slotName }, members.Select(m => globalScales[m.Name]).ToList(),
                        consumeHessian: wholeSlot && !linearConfig.AllowRtnFallback);
                }
                catch (HessianNotPositiveDefiniteException e) when (linearConfig.AllowRtnFallback)
                {
                    solved = RtnFallback.Solve(members.Select(m => folded[m.Name]).ToList(), h, quantizer,
                        members.Select(m => globalScales[m.Name]).ToList(), slotName, e.Message);
                }
                if (wholeSlot) hessians[group.Key].Dispose();
                foreach (var m in members) folded[m.Name].Dispose();
                for (int k = 0; k < members.Count; k++)
                {
                    var (name, linear) = members[k];
                    var r = solved[k];
                    r.Permutation?.Dispose();
                    string? warning = r.Warnings.Count > 0 ? string.Join("; ", r.Warnings) : null;
                    // FP-Quant's logged "Relative MSE error" uses the dampened H of the solve.
                    Record(layer, state, name, linear, r.Weight, r.Params, r.RelativeError, hessianWeighted: true, warning);
                }
            }
        }
        else
        {
            foreach (var (name, linear) in linears)
            {
                using var scope = NewDisposeScope();
                Tensor w = folded[name];
                Tensor? h = hessians?.GetValueOrDefault(SlotOf(name))?.Hessian;
                string fullName = $"model.layers.{layer.Index}.{name}";
                var (dq, p) = DataFreeLinearQuantizer.Quantize(w, spec, quantizer,
                    linearConfig.Method == QuantMethod.Hqq ? linearConfig.Hqq : null, globalScales[name], fullName);
                Record(layer, state, name, linear, dq, p, QuantError.Relative(w, dq, h), h is not null, warning: null);
            }
        }
        foreach (var t in globalScales.Values) t?.Dispose();
    }

    /// <summary>Keeps a linear's quantized weight and parameters (the layer state owns them: export packs codes from them).</summary>
    private void Record(DecoderLayer layer, LayerQuantState state, string name, DecoderLinear linear,
        Tensor dq, GroupParams p, double relativeError, bool hessianWeighted, string? warning)
    {
        string fullName = $"model.layers.{layer.Index}.{name}";
        reports.Add(new LayerQuantReport(fullName, relativeError, hessianWeighted, warning));
        if (warning is not null) warnings.Add($"{fullName}: {warning}");
        state.WeightParams[name] = p.DetachFromDisposeScope();
        linear.ReplaceWeight(dq.to(dtype).DetachFromDisposeScope());
    }

    private static void FuseMin(Dictionary<string, Tensor?> scales, string[] names)
    {
        var parts = names.Select(n => scales[n]!).ToArray();
        var fused = parts.Skip(1).Aggregate(parts[0].clone(), (a, b) => minimum(a, b)).DetachFromDisposeScope();
        foreach (var n in names)
        {
            scales[n]!.Dispose();
            scales[n] = fused.clone().DetachFromDisposeScope();
        }
        fused.Dispose();
    }

    /// <summary>
    /// Writes each layer's Hessians to QUANTSHARP_DUMP_HESSIANS/layer-N.safetensors when that variable is set: a
    /// diagnostic for comparing calibration statistics with a reference implementation, off by default.
    /// </summary>
    private static class DebugDump
    {
        public static void Hessians(int layer, IReadOnlyDictionary<string, Tensor> hessians)
        {
            string? dir = Environment.GetEnvironmentVariable("QUANTSHARP_DUMP_HESSIANS");
            if (string.IsNullOrEmpty(dir) || layer > 1) return;
            Directory.CreateDirectory(dir);
            IO.SafetensorsWriter.Write(Path.Combine(dir, $"layer-{layer}.safetensors"),
                hessians.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.cpu())));
        }
    }
}
