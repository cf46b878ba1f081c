using System.Diagnostics;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
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
/// layer's inputs. Only one layer's working set (Hessians, activations of one batch) lives at a time. The per-layer
/// work is <see cref="DecoderLayerStep"/>, which the low-memory mode shares.
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
        int current = -1;
        try
        {
            if (config.NeedsCalibration)
            {
                hidden = clock.Time("calibrate", () => EmbedCalibration(model.EmbedTokens, calibration!, config, device));
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
                    layer =>
                    {
                        var s = new LayerQuantState(layer.Index);
                        DecoderLayerStep.InstallOnlineHooks(model.Config, model.DType, layer, config, s, device);
                        return s;
                    },
                    ref hidden, device);
            }
            var step = new DecoderLayerStep(model.Config, model.DType, config, device, blockAlgorithm, oom, clock, result.Reports,
                result.Warnings, progress, onHessians);
            for (int i = start; i < n; i++)
            {
                current = i;
                var layer = model.Layers[i];
                NumericGuards.CheckWeights(layer);
                if (streamLayers) layer.MoveTo(device);
                var (state, blockOutputs) = step.Quantize(layer, hidden, cos, sin);
                result.Layers.Add(state);
                hidden = step.Advance(layer, hidden, blockOutputs, cos, sin);
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
            throw oom.Final(e, current);
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
    internal static List<Tensor> EmbedCalibration(TokenEmbedding embed, int[][] calibration, QuantizationConfig config, Device device)
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
            var h = embed.forward(ids.to(embed.Weight.device)).to(store);
            batches.Add(h.DetachFromDisposeScope());
        }
        return batches;
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
}
