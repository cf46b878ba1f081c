using System.Diagnostics;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// FP-Quant's layer-wise sequential pipeline. The first layer's inputs are captured for every calibration sequence;
/// then, per decoder layer: install the four online rotations (q/k/v input, o_proj input, gate/up input, down_proj
/// input) and the activation quantizers; run the calibration batches through the layer to accumulate one Hessian per
/// distinct input (from transformed, unquantized activations) and to calibrate NVFP activation global scales; fold
/// the rotations into the weights and quantize them (RTN or GPTQ); re-run the quantized layer to produce the next
/// layer's inputs. Only one layer's working set (Hessians, activations of one batch) lives at a time.
/// </summary>
public static class LayerwiseQuantizer
{
    /// <summary>Input slots of a decoder layer: each has one rotation, one activation quantizer, one Hessian.</summary>
    internal static readonly string[] Slots = ["qkv", "o", "gate_up", "down"];

    internal static string SlotOf(string linearName) => linearName switch
    {
        "self_attn.q_proj" or "self_attn.k_proj" or "self_attn.v_proj" => "qkv",
        "self_attn.o_proj" => "o",
        "mlp.gate_proj" or "mlp.up_proj" => "gate_up",
        "mlp.down_proj" => "down",
        _ => throw new ArgumentException("not a decoder linear: " + linearName, nameof(linearName)),
    };

    public static QuantizationResult Run(CausalLM model, QuantizationConfig config, int[][]? calibration,
        Action<int, int, string>? progress = null) => Run(model, config, calibration, progress, onHessians: null);

    /// <param name="outOfMemoryFault">Test hook: called with (layer, phase) at the points where a CUDA out-of-memory
    /// error is recovered from (calibrate, solve, and each re-run batch), so tests can throw a simulated one.</param>
    internal static QuantizationResult Run(CausalLM model, QuantizationConfig config, int[][]? calibration,
        Action<int, string>? outOfMemoryFault) => Run(model, config, calibration, null, null, outOfMemoryFault);

    /// <param name="onHessians">Sees each layer's Hessians per input slot right after calibration (tests compare them
    /// with ones computed from the float model); by default they go to the QUANTSHARP_DUMP_HESSIANS diagnostic.</param>
    internal static QuantizationResult Run(CausalLM model, QuantizationConfig config, int[][]? calibration,
        Action<int, int, string>? progress, Action<int, IReadOnlyDictionary<string, Tensor>>? onHessians,
        Action<int, string>? outOfMemoryFault = null)
    {
        config.Validate();
        if (config.NeedsCalibration && (calibration is null || calibration.Length == 0))
            throw new QuantSharpException("this configuration needs calibration data (--calib FILE): GPTQ and NVFP activations calibrate on it.");
        Device device = config.ComputeDevice ?? model.Device;
        bool streamLayers = !Backend.Devices.Same(device, model.Device);
        var clock = new PhaseClock(device);
        var total = Stopwatch.StartNew();
        var result = new QuantizationResult(model, config);
        int n = model.Layers.Count;
        using var blockAlgorithm = BlockAlgorithms.Create(config);
        var oom = new OutOfMemoryFallback(config, device, outOfMemoryFault);

        using var noGrad = no_grad();
        List<Tensor>? hidden = null;
        Tensor? cos = null, sin = null;
        LayerCheckpoint.Fingerprint? fingerprint = null;
        try
        {
            if (config.NeedsCalibration)
            {
                hidden = clock.Time("calibrate", () => EmbedCalibration(model, calibration!, config, device));
                NumericGuards.CheckActivations(hidden, "the embeddings of the calibration windows (model.embed_tokens)");
                var (c, s) = model.Rotary(0, calibration![0].Length);
                (cos, sin) = streamLayers ? (c.to(device).DetachFromDisposeScope(), s.to(device).DetachFromDisposeScope()) : (c, s);
                if (streamLayers) { c.Dispose(); s.Dispose(); }
            }
            int start = 0;
            if (config.Checkpoint is { } checkpoint)
            {
                // Fingerprinted before any layer changes; finished layers come back from the folder.
                fingerprint = LayerCheckpoint.Compute(model, config, calibration);
                start = checkpoint.Restore(model, config, fingerprint, result,
                    layer => { var s = new LayerQuantState(layer.Index); InstallOnlineHooks(model, layer, config, s, device); return s; },
                    ref hidden, device);
            }
            for (int i = start; i < n; i++)
            {
                var layer = model.Layers[i];
                NumericGuards.CheckWeights(layer);
                if (streamLayers) layer.MoveTo(device);
                // A CUDA out-of-memory error while the layer is calibrated or quantized puts its parameters back and
                // runs it again once with the activations in CPU memory (OutOfMemoryFallback).
                using var snapshot = oom.CanRetryLayers && !oom.Used ? new OutOfMemoryFallback.LayerSnapshot(layer) : null;
                LayerQuantState state;
                BlockContext? block = null;
                while (true)
                {
                    string phase = "calibrating";
                    try
                    {
                        state = new LayerQuantState(i);
                        result.Layers.Add(state);
                        progress?.Invoke(i, n, "calibrate");
                        oom.At(i, "calibrate");
                        InstallOnlineHooks(model, layer, config, state, device);
                        // Fold the rotations into the weights before calibrating: the online hooks rotate activations from
                        // here on, so the layer computes what the float model did only once its weights carry M⁻ᵀ. (Calibrating
                        // with rotated activations but unrotated weights gives o_proj, gate/up and down_proj wrong inputs,
                        // hence wrong Hessians and NVFP activation scales.) The float32 folds are kept for quantization.
                        Dictionary<string, Tensor> folded = FoldRotations(model, layer, state);

                        // One stage normally; true-sequential GPTQ has one stage per input slot, each calibrated on the layer
                        // as the earlier stages left it (their linears already quantized), so o_proj, gate/up and down_proj
                        // see the inputs the quantized layer will give them.
                        string[][] stages = config.TrueSequential && config.UsesGptq ? Slots.Select(s => new[] { s }).ToArray() : [Slots];
                        block = null;
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
                                progress?.Invoke(i, n, "block");
                                block = new BlockContext(layer, model.Config, model.DType, hidden!, cos!, sin!, device, config,
                                    WeightQuantizer.Create(config.Weights!), folded,
                                    (name, linear, dq, p) => Record(layer, state, result, name, linear, dq, p,
                                        QuantError.Relative(folded[name], dq, null), hessianWeighted: false, warning: null));
                                clock.Time("block", () => { blockAlgorithm.Apply(block); return 0; });
                            }

                            if (config.QuantizesWeights)
                            {
                                progress?.Invoke(i, n, "quantize");
                                phase = "quantizing";
                                oom.At(i, "solve");
                                clock.Time("solve", () => { QuantizeWeights(layer, state, folded, hessians, result, stage, block?.Recorded); return 0; });
                            }
                            if (hessians is not null) foreach (var h in hessians.Values) h.Dispose();
                        }
                        foreach (var t in folded.Values) t.Dispose();
                        break;
                    }
                    catch (Exception e)
                    {
                        // Not an exception filter: the failed attempt's dispose scopes must unwind before memory is freed.
                        if (!oom.TryRecover(e, i, phase, hidden)) throw;
                        DetachObservers(layer);
                        result.Layers[^1].Dispose();
                        result.Layers.RemoveAt(result.Layers.Count - 1);
                        string prefix = $"model.layers.{i}.";
                        result.Reports.RemoveAll(r => r.Name.StartsWith(prefix, StringComparison.Ordinal));
                        result.Warnings.RemoveAll(w => w.StartsWith(prefix, StringComparison.Ordinal));
                        snapshot!.Restore(layer);
                    }
                }

                if (block?.NextInputs is { } next)
                {
                    foreach (var t in hidden!) t.Dispose();
                    hidden = next;
                }
                else if (hidden is not null && i < n - 1)
                {
                    progress?.Invoke(i, n, "propagate");
                    hidden = clock.Time("rerun", () => RunLayer(layer, hidden, cos!, sin!, device, keepOutputs: true, oom)!);
                    NumericGuards.CheckActivations(hidden, $"the output of decoder layer {i} (model.layers.{i})");
                }
                if (device.type == DeviceType.CUDA &&
                    Backend.Cuda.CudaKernels.DeviceMemoryInUse(Math.Max(0, (int)device.index)) is { } used)
                    result.LayerDeviceMemoryBytes.Add(used);
                if (streamLayers) clock.Time("offload", () => { StreamOut(layer, state, model.Device); return 0; });
                config.Checkpoint?.Save(i, layer, state, result, fingerprint!, i < n - 1 ? hidden : null);
                progress?.Invoke(i + 1, n, "done");
            }
        }
        catch (Exception e) when (OutOfMemoryFallback.IsOutOfMemory(e))
        {
            throw oom.Final(e, result.Layers.Count - 1);
        }
        finally
        {
            if (hidden is not null) foreach (var t in hidden) t.Dispose();
            cos?.Dispose();
            sin?.Dispose();
        }
        result.Warnings.AddRange(oom.Warnings);
        OutputHeadQuantizer.Run(model, config, result);
        result.Seconds = total.Elapsed.TotalSeconds;
        foreach (var (phase, s) in clock.Seconds) result.PhaseSeconds[phase] = s;
        return result;
    }

    /// <summary>Embeddings of the calibration sequences, in batches, stored on the device or (offloaded) the CPU.</summary>
    private static List<Tensor> EmbedCalibration(CausalLM model, int[][] calibration, QuantizationConfig config, Device device)
    {
        int len = calibration[0].Length;
        if (calibration.Any(c => c.Length != len)) throw new ArgumentException("calibration windows differ in length");
        var store = config.CpuOffloadActivations ? CPU : device;
        var batches = new List<Tensor>();
        for (int start = 0; start < calibration.Length; start += config.CalibBatchSize)
        {
            using var scope = NewDisposeScope();
            int b = Math.Min(config.CalibBatchSize, calibration.Length - start);
            var ids = tensor(calibration.Skip(start).Take(b).SelectMany(w => w.Select(t => (long)t)).ToArray(), [b, len], int64);
            var h = model.EmbedTokens.forward(ids.to(model.Device)).to(store);
            batches.Add(h.DetachFromDisposeScope());
        }
        return batches;
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

    private static void InstallOnlineHooks(CausalLM model, DecoderLayer layer, QuantizationConfig config, LayerQuantState state, Device device)
    {
        int hidden = model.Config.HiddenSize, ffn = model.Config.IntermediateSize;
        int oWidth = model.Config.NumHeads * model.Config.HeadDim;
        var widths = new Dictionary<string, int> { ["qkv"] = hidden, ["o"] = oWidth, ["gate_up"] = hidden, ["down"] = ffn };
        for (int s = 0; s < Slots.Length; s++)
        {
            string slot = Slots[s];
            if (config.Transform != TransformKind.Identity)
            {
                int g = Math.Min(config.TransformGroupSize, widths[slot]);
                long seed = config.TransformSeed + layer.Index * 4L + s;
                state.Transforms[slot] = BlockTransform.Create(config.Transform, widths[slot], g, seed, device, model.DType,
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
    private static KvCacheHook CreateKvCacheHook(CausalLM model, DecoderLayer layer, QuantizationConfig config, KvCacheSpec kv)
    {
        int hd = model.Config.HeadDim;
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
    private static Dictionary<string, Tensor> FoldRotations(CausalLM model, DecoderLayer layer, LayerQuantState state)
    {
        var folded = new Dictionary<string, Tensor>();
        foreach (var (name, linear) in layer.Linears())
        {
            using var scope = NewDisposeScope();
            Tensor w32 = linear.Weight.to(float32);
            var t = state.Transforms.GetValueOrDefault(SlotOf(name));
            Tensor f = t is null ? (w32.dtype == linear.Weight.dtype ? w32.clone() : w32) : t.FoldIntoWeight(w32);
            if (t is not null) linear.ReplaceWeight(f.to(model.DType, copy: true).DetachFromDisposeScope());
            folded[name] = f.DetachFromDisposeScope();
        }
        return folded;
    }

    /// <summary>Quantizes the linears of <paramref name="slots"/>, each with the configuration it resolves to.</summary>
    private static void QuantizeWeights(DecoderLayer layer, LayerQuantState state,
        Dictionary<string, Tensor> folded, Dictionary<string, HessianAccumulator>? hessians, QuantizationResult result, string[] slots,
        IReadOnlySet<string>? alreadyQuantized = null)
    {
        // A block algorithm (AutoRound, AWQ with clipping) may have produced some linears' final weights already.
        var byConfig = layer.Linears().Where(l => slots.Contains(SlotOf(l.Name)) && alreadyQuantized?.Contains(l.Name) != true)
            .GroupBy(l => result.Config.For($"model.layers.{layer.Index}.{l.Name}"));
        foreach (var group in byConfig)
        {
            // A configuration without a weight spec (a local dtype fp32/bf16 rule) leaves its linears in float.
            if (group.Key.Weights is null) continue;
            QuantizeWeights(layer, state, folded, hessians, result, group.Key, group.ToList());
        }
    }

    private static void QuantizeWeights(DecoderLayer layer, LayerQuantState state, Dictionary<string, Tensor> folded,
        Dictionary<string, HessianAccumulator>? hessians, QuantizationResult result, QuantizationConfig config,
        List<(string Name, DecoderLinear Linear)> linears)
    {
        var spec = config.Weights!;
        var quantizer = WeightQuantizer.Create(spec);

        var globalScales = new Dictionary<string, Tensor?>();
        foreach (var (name, _) in linears) globalScales[name] = quantizer.ComputeGlobalScale(folded[name])?.DetachFromDisposeScope();
        if (config.FuseGlobalScale && spec!.Format == QuantFormat.NvFp)
        {
            FuseMin(globalScales, ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]);
            FuseMin(globalScales, ["mlp.gate_proj", "mlp.up_proj"]);
        }

        if (config.Method == QuantMethod.Gptq)
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
                        config.Gptq with { LayerName = slotName }, members.Select(m => globalScales[m.Name]).ToList(),
                        consumeHessian: wholeSlot && !config.AllowRtnFallback);
                }
                catch (HessianNotPositiveDefiniteException e) when (config.AllowRtnFallback)
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
                    Record(layer, state, result, name, linear, r.Weight, r.Params, r.RelativeError, hessianWeighted: true, warning);
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
                    config.Method == QuantMethod.Hqq ? config.Hqq : null, globalScales[name], fullName);
                Record(layer, state, result, name, linear, dq, p, QuantError.Relative(w, dq, h), h is not null, warning: null);
            }
        }
        foreach (var t in globalScales.Values) t?.Dispose();
    }

    /// <summary>
    /// Sends a finished layer back to the model's device together with its weight parameters (what export needs); its
    /// small rotation blocks stay and follow the activations (<see cref="BlockTransform.ApplyToActivations"/>).
    /// </summary>
    private static void StreamOut(DecoderLayer layer, LayerQuantState state, Device home)
    {
        layer.MoveTo(home);
        foreach (var name in state.WeightParams.Keys.ToList())
        {
            var moved = state.WeightParams[name].To(home);
            state.WeightParams[name].Dispose();
            state.WeightParams[name] = moved;
        }
    }

    /// <summary>Keeps a linear's quantized weight and parameters (the layer state owns them: export packs codes from them).</summary>
    private static void Record(DecoderLayer layer, LayerQuantState state, QuantizationResult result, string name, DecoderLinear linear,
        Tensor dq, GroupParams p, double relativeError, bool hessianWeighted, string? warning)
    {
        string fullName = $"model.layers.{layer.Index}.{name}";
        result.Reports.Add(new LayerQuantReport(fullName, relativeError, hessianWeighted, warning));
        if (warning is not null) result.Warnings.Add($"{fullName}: {warning}");
        state.WeightParams[name] = p.DetachFromDisposeScope();
        linear.ReplaceWeight(dq.to(result.Model.DType).DetachFromDisposeScope());
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

    /// <summary>Wall time per phase, synchronising the GPU so asynchronous work is charged to the right phase.</summary>
    private sealed class PhaseClock(Device device)
    {
        public Dictionary<string, double> Seconds { get; } = new();

        public T Time<T>(string phase, Func<T> work)
        {
            var w = Stopwatch.StartNew();
            T r = work();
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            Seconds[phase] = Seconds.GetValueOrDefault(phase) + w.Elapsed.TotalSeconds;
            return r;
        }
    }
}
