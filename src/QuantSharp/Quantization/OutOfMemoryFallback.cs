using QuantSharp.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// What the layer loop does when the device runs out of memory: once per run, the calibration activations move to CPU
/// memory (what --cpu-offload-activations does from the start; no number changes, only where the tensors live) and the
/// failed step is retried, with a warning. A second out-of-memory error, or one when activations are already in CPU
/// memory, stops the run with a message naming the flags that lower the peak.
/// <para>
/// Two steps can be retried. A failure while a layer is calibrated or quantized restores the layer's parameters from a
/// snapshot taken before it started and runs the layer again from the beginning (its calibration activations are
/// untouched until the re-run). A failure while the quantized layer produces the next layer's inputs continues with the
/// batch that failed, since the batches before it have already been replaced by their outputs.
/// </para>
/// </summary>
internal sealed class OutOfMemoryFallback(QuantizationConfig config, Device device, Action<int, string>? fault)
{
    private bool _offloaded = config.CpuOffloadActivations;

    /// <summary>Whether the one retry has been spent.</summary>
    public bool Used { get; private set; }

    /// <summary>Warnings to report with the result (the first is also printed at once: runs at scale take hours).</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>
    /// Whether layers need a snapshot to be retried: on CUDA, or when a test injects faults (so the path runs on CPU).
    /// Block algorithms keep state across layers (float reference streams), so their layers are not retried.
    /// </summary>
    public bool CanRetryLayers => (device.type == DeviceType.CUDA || fault is not null) && !config.IsBlockMethod;

    /// <summary>A test hook's point in the loop: (layer index, phase: calibrate | solve | rerun).</summary>
    public void At(int layer, string phase) => fault?.Invoke(layer, phase);

    /// <summary>libtorch's allocation failures (CUDA's "CUDA out of memory. Tried to allocate ...") by their message.</summary>
    public static bool IsOutOfMemory(Exception e) =>
        e is not QuantSharpException && e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Decides on an out-of-memory error in <paramref name="layer"/>: false when it is not one (rethrow as is); true
    /// after moving <paramref name="hidden"/> to CPU memory (retry); otherwise throws the final error.
    /// </summary>
    public bool TryRecover(Exception e, int layer, string phase, List<Tensor>? hidden)
    {
        if (!IsOutOfMemory(e)) return false;
        if (Used || _offloaded || !CanRetryLayers) throw Final(e, layer);
        Used = true;
        _offloaded = true;
        // Free what the failed attempt held (its dispose scopes are gone; unreferenced tensors go with their finalizers)
        // before asking the allocator again.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (hidden is not null) MoveToCpu(hidden);
        string warning = $"decoder layer {layer}: the {device} device ran out of memory while {phase} ({FirstLine(e)}); " +
                         "retrying with the calibration activations in CPU memory, as --cpu-offload-activations does " +
                         "(pass it from the start to skip this retry).";
        Warnings.Add(warning);
        Console.Error.WriteLine("warning: " + warning);
        return true;
    }

    /// <summary>The error of an out-of-memory failure that offloading did not (or cannot) fix.</summary>
    public QuantSharpException Final(Exception e, int layer) => new(
        $"decoder layer {layer}: the {device} device ran out of memory ({FirstLine(e)})" +
        (Used ? " again after moving the calibration activations to CPU memory" : "") + ". Lower it with " +
        "--cpu-offload-modules (one decoder layer on the GPU at a time), " +
        (_offloaded ? "" : "--cpu-offload-activations (calibration activations in CPU memory), ") +
        $"a smaller --calib-batch-size (now {config.CalibBatchSize} sequences per forward) or fewer --num-sequences.", e);

    private static void MoveToCpu(List<Tensor> hidden)
    {
        for (int i = 0; i < hidden.Count; i++)
        {
            if (hidden[i].device_type == DeviceType.CPU) continue;
            var moved = hidden[i].cpu().DetachFromDisposeScope();
            hidden[i].Dispose();
            hidden[i] = moved;
        }
    }

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim();

    /// <summary>A copy (in CPU memory) of every parameter of a decoder layer, to put back before the layer is retried.</summary>
    public sealed class LayerSnapshot : IDisposable
    {
        private readonly Dictionary<string, Tensor> _saved = new();

        public LayerSnapshot(DecoderLayer layer)
        {
            using var noGrad = no_grad();
            foreach (var (name, p) in layer.named_parameters())
                _saved[name] = p.detach().to(CPU, copy: true).DetachFromDisposeScope();
        }

        /// <summary>Copies the saved values into the layer's current parameters (folding and quantizing keep the shapes).</summary>
        public void Restore(DecoderLayer layer)
        {
            using var noGrad = no_grad();
            foreach (var (name, p) in layer.named_parameters()) p.copy_(_saved[name]);
        }

        public void Dispose()
        {
            foreach (var t in _saved.Values) t.Dispose();
        }
    }
}
