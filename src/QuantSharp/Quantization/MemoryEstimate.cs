using System.Globalization;
using QuantSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// Peak memory of a layer-wise quantization run, estimated from the shapes before anything is loaded, split by where
/// it lives (CPU or GPU). The parts: the model's weights; the calibration activations (all sequences at the layer
/// boundary, plus the outputs of one batch while the next layer's inputs are produced); one batch's forward working
/// set inside a decoder layer (MLP and attention intermediates, float32 activation quantization); the layer's Hessians
/// (float32 [in, in] per input slot) and float32 copies of its weights; and GPTQ's solve of the widest slot (copies of
/// H while it is factorised, copies of the stacked weights).
/// </summary>
public sealed record MemoryEstimate(long CpuBytes, long GpuBytes, IReadOnlyDictionary<string, long> Parts)
{
    /// <summary>What a process holds before the model arrives (runtime, libtorch): measured by the caller, added to CPU.</summary>
    public static MemoryEstimate For(ModelConfig c, ScalarType dtype, QuantizationConfig q, bool onGpu, long baselineCpuBytes)
    {
        long e = ElementSize(dtype);
        long hidden = c.HiddenSize, ffn = c.IntermediateSize, attn = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim;
        long layerParams = hidden * (attn + 2 * kv) + attn * hidden + 3 * hidden * ffn + 2 * hidden;
        long embed = (long)c.VocabSize * hidden;
        long modelBytes = (c.NumLayers * layerParams + embed * (c.TieWordEmbeddings ? 1 : 2) + hidden) * e;

        bool calib = q.NeedsCalibration;
        long seqs = calib ? q.NumSequences : 0, len = q.SeqLen, batch = Math.Min(q.CalibBatchSize, Math.Max(1, seqs));
        long activations = calib ? seqs * len * hidden * e + batch * len * hidden * e : 0;
        // One batch through a layer: gate, up and their product (ffn wide), q/k/v/o and residuals (hidden wide), scores.
        long tokens = batch * len;
        long forward = calib ? tokens * (3 * ffn + 6 * hidden + attn + 2 * kv) * 4 + batch * c.NumHeads * len * len * 4 : 0;
        long hessians = q.Method == QuantMethod.Gptq ? (2 * hidden * hidden + attn * attn + ffn * ffn) * 4 : 0;
        long folded = q.Weights is null ? 0 : layerParams * 4;
        // GPTQ on the widest slot (down_proj reads ffn; q/k/v stack attn+2kv rows over hidden): three [in, in] copies at
        // the factorisation's peak and four copies of the stacked weight (input copy, working copy, reference, result).
        long solve = 0;
        if (q.Method == QuantMethod.Gptq)
        {
            long Slot(long rows, long cols) => (3 * cols * cols + 4 * rows * cols) * 4;
            solve = new[] { Slot(attn + 2 * kv, hidden), Slot(hidden, attn), Slot(2 * ffn, hidden), Slot(hidden, ffn) }.Max();
        }
        else if (q.Weights is not null) solve = 3 * Math.Max(hidden * ffn, hidden * attn) * 4;
        long working = forward + hessians + folded + solve;

        var parts = new Dictionary<string, long>
        {
            ["model"] = modelBytes, ["activations"] = activations, ["layer_forward"] = forward, ["hessians"] = hessians,
            ["folded_weights"] = folded, ["solve"] = solve, ["baseline_cpu"] = baselineCpuBytes,
        };
        bool streamLayers = q.ComputeDevice is { } d && d.type == DeviceType.CUDA && onGpu;
        if (!onGpu) return new MemoryEstimate(baselineCpuBytes + modelBytes + activations + working, 0, parts);
        long layerOnGpu = layerParams * e;
        long gpuModel = streamLayers ? layerOnGpu : modelBytes;
        long gpuActivations = q.CpuOffloadActivations ? 2 * batch * len * hidden * e : activations;
        long cpu = baselineCpuBytes + (streamLayers ? modelBytes : 0) + (q.CpuOffloadActivations ? activations : 0);
        return new MemoryEstimate(cpu, gpuModel + gpuActivations + working, parts);
    }

    private static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => 4,
    };

    /// <summary>
    /// Refuses a run whose estimate exceeds what is available, naming the flags that lower the part that is too big.
    /// </summary>
    public void Check(long? availableCpu, long? availableGpu, string gpuName)
    {
        string Gib(long b) => string.Create(CultureInfo.InvariantCulture, $"{b / (double)(1L << 30):F2} GiB");
        if (availableGpu is { } g && GpuBytes > g)
            throw new QuantSharpException($"estimated peak GPU memory {Gib(GpuBytes)} exceeds the {Gib(g)} free on {gpuName} " +
                $"(model {Gib(Parts["model"])}, calibration activations {Gib(Parts["activations"])}, layer working set " +
                $"{Gib(Parts["layer_forward"] + Parts["hessians"] + Parts["folded_weights"] + Parts["solve"])}). Lower it with " +
                "--cpu-offload-modules (one decoder layer on the GPU at a time), --cpu-offload-activations (activations in CPU " +
                "memory), fewer --num-sequences or a smaller --calib-batch-size.");
        if (availableCpu is { } c && CpuBytes > c)
            throw new QuantSharpException($"estimated peak CPU memory {Gib(CpuBytes)} exceeds the {Gib(c)} available " +
                $"(model {Gib(Parts["model"])}, calibration activations {Gib(Parts["activations"])}). Lower it with fewer " +
                "--num-sequences, a shorter --seq-len or a smaller --calib-batch-size" +
                (Parts["model"] > c / 2 ? "; the model alone is large: quantize on a GPU without --cpu-offload-modules." : "."));
    }

    /// <summary>Free bytes on a CUDA device (null on CPU or without the driver).</summary>
    public static long? FreeGpuBytes(Device device) =>
        device.type == DeviceType.CUDA ? Backend.Cuda.CudaKernels.DeviceMemoryFree(Math.Max(0, (int)device.index)) : null;

    /// <summary>MemAvailable from /proc/meminfo (Linux), else null: the check is skipped where it cannot be measured.</summary>
    public static long? AvailableCpuBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Resident set size now and its high-water mark (VmRSS, VmHWM of /proc/self/status; Linux), else nulls.</summary>
    public static (long? Rss, long? Peak) ProcessRss()
    {
        long? rss = null, peak = null;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kb(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kb(line);
            }
        }
        catch (IOException) { }
        return (rss, peak);

        static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>Resets the kernel's RSS high-water mark (VmHWM) so a later <see cref="ProcessRss"/> peak covers one phase.</summary>
    public static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
