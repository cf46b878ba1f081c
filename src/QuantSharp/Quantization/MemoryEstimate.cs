using System.Globalization;
using QuantSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>The evaluation a run does after quantizing: windows per forward and their length (--eval-batch-size, --eval-seq-len).</summary>
public sealed record EvalShape(int Batch, int SeqLen);

/// <summary>
/// Peak memory of a layer-wise quantization run, estimated from the shapes before anything is loaded, split by where
/// it lives (CPU or GPU). The parts: the process before the model arrives (measured: <see cref="RuntimeBaseline"/>);
/// the model's weights; the calibration activations (all sequences at the layer boundary, plus the outputs of one
/// batch while the next layer's inputs are produced); one batch's forward working set inside a decoder layer (MLP and
/// attention intermediates, float32 activation quantization); the layer's Hessians (float32 [in, in] per input slot)
/// and float32 copies of its weights; GPTQ's solve of the widest slot (copies of H while it is factorised, copies of
/// the stacked weights); and the perplexity evaluation (one batch of windows: the logits and their float32
/// log-softmax over the vocabulary, plus one layer's forward). Quantizing and evaluating do not overlap, so the peak
/// holds the larger of the two working sets.
/// </summary>
public sealed record MemoryEstimate(long CpuBytes, long GpuBytes, IReadOnlyDictionary<string, long> Parts)
{
    /// <param name="baselineCpuBytes">What the process holds before the model arrives (runtime, libtorch, tokenized
    /// data): <see cref="RuntimeBaseline"/>, added to CPU.</param>
    /// <param name="eval">The evaluation after quantizing (null: none).</param>
    public static MemoryEstimate For(ModelConfig c, ScalarType dtype, QuantizationConfig q, bool onGpu, long baselineCpuBytes,
        EvalShape? eval = null)
    {
        long e = ElementSize(dtype);
        long hidden = c.HiddenSize, ffn = c.IntermediateSize, attn = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim;
        long layerParams = hidden * (attn + 2 * kv) + attn * hidden + 3 * hidden * ffn + 2 * hidden;
        long embed = (long)c.VocabSize * hidden;
        long modelBytes = (c.NumLayers * layerParams + embed * (c.TieWordEmbeddings ? 1 : 2) + hidden) * e;

        bool calib = q.NeedsCalibration;
        long seqs = calib ? q.NumSequences : 0, len = q.SeqLen, batch = Math.Min(q.CalibBatchSize, Math.Max(1, seqs));
        long activations = calib ? seqs * len * hidden * e + batch * len * hidden * e : 0;
        long forward = calib ? LayerForward(c, batch, len) : 0;
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

        // Evaluation: the logits [b, L-1, V] in the model dtype, their float32 copy (when the dtype is not float32) and
        // cross-entropy's float32 log-softmax, beside one layer's forward and the final hidden states.
        long evalBytes = 0;
        if (eval is { } ev)
        {
            long b = ev.Batch, l = ev.SeqLen, tokens = b * (l - 1);
            evalBytes = tokens * c.VocabSize * (e + (e == 4 ? 0 : 4) + 4) + LayerForward(c, b, l) + b * l * hidden * e;
        }

        var parts = new Dictionary<string, long>
        {
            ["model"] = modelBytes, ["activations"] = activations, ["layer_forward"] = forward, ["hessians"] = hessians,
            ["folded_weights"] = folded, ["solve"] = solve, ["eval"] = evalBytes, ["baseline_cpu"] = baselineCpuBytes,
        };
        long quantizePhase = activations + working;
        bool streamLayers = q.ComputeDevice is { } d && d.type == DeviceType.CUDA && onGpu;
        if (!onGpu) return new MemoryEstimate(baselineCpuBytes + modelBytes + Math.Max(quantizePhase, evalBytes), 0, parts);
        long layerOnGpu = layerParams * e;
        long gpuModel = streamLayers ? layerOnGpu : modelBytes;
        long gpuActivations = q.CpuOffloadActivations ? 2 * batch * len * hidden * e : activations;
        long cpu = baselineCpuBytes + (streamLayers ? modelBytes : 0) + (q.CpuOffloadActivations ? activations : 0);
        // The whole model is on the GPU while it is evaluated, streamed or not.
        long gpu = Math.Max(gpuModel + gpuActivations + working, modelBytes + evalBytes);
        return new MemoryEstimate(cpu, gpu, parts);
    }

    /// <summary>
    /// Peak CPU memory of the low-memory mode with calibration (<c>--layer-wise --method gptq</c>): the same calibration
    /// activations and layer working set as the in-memory run (<see cref="For"/>), but one decoder layer's weights in
    /// place of the model. The embedding table is held only while layer 0's inputs are looked up in it, before any layer
    /// exists, so the peak is the larger of the two phases. "model" in <see cref="Parts"/> is the one layer here.
    /// </summary>
    public static MemoryEstimate ForLayerWise(ModelConfig c, ScalarType dtype, QuantizationConfig q, long baselineCpuBytes)
    {
        var inMemory = For(c, dtype, q, onGpu: false, baselineCpuBytes);
        var p = inMemory.Parts;
        long e = ElementSize(dtype);
        long hidden = c.HiddenSize, attn = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim;
        long layerBytes = (hidden * (attn + 2 * kv) + attn * hidden + 3 * hidden * (long)c.IntermediateSize + 2 * hidden) * e;
        long embedBytes = (long)c.VocabSize * hidden * e;
        long layerPhase = layerBytes + p["activations"] + p["layer_forward"] + p["hessians"] + p["folded_weights"] + p["solve"];
        long embedPhase = embedBytes + p["activations"];
        var parts = new Dictionary<string, long>(p) { ["model"] = layerBytes, ["embedding"] = embedBytes, ["eval"] = 0 };
        return new MemoryEstimate(baselineCpuBytes + Math.Max(layerPhase, embedPhase), 0, parts);
    }

    /// <summary>
    /// One batch of <paramref name="len"/>-token sequences through a decoder layer, float32 intermediates (activation
    /// quantization works in float32): gate, up and their product (ffn wide), q/k/v/o, residuals and norms (hidden
    /// wide), and one [b, heads, L, L] float32 buffer for attention (an upper bound on SDPA's workspace; the fused
    /// kernels need less).
    /// </summary>
    private static long LayerForward(ModelConfig c, long batch, long len)
    {
        long hidden = c.HiddenSize, ffn = c.IntermediateSize, attn = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim;
        return batch * len * (3 * ffn + 6 * hidden + attn + 2 * kv) * 4 + batch * c.NumHeads * len * len * 4;
    }

    /// <summary>
    /// The process's resident set once the runtime is warm: libtorch's code, OpenMP threads and BLAS/LAPACK workspaces
    /// come into memory the first time their kernels run, not when the library loads, so reading the RSS before any
    /// kernel ran under-counts by tens of megabytes. This runs each kernel family the pipeline uses once on tiny
    /// tensors (matrix products, Cholesky factorisation and inverse, softmax, SiLU, rounding, sorting) and then reads
    /// the RSS. Everything the caller already holds (tokenized data, the tokenizer) is included.
    /// </summary>
    public static long RuntimeBaseline()
    {
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var gen = new Generator(0);
            Tensor x = randn([64, 64], generator: gen);
            Tensor h = x.matmul(x.t()).add_(eye(64).mul_(64));
            Tensor inverse = linalg.cholesky(h).cholesky_inverse();
            Tensor y = nn.functional.softmax(x.matmul(inverse), 1).add(nn.functional.silu(x)).round().clamp(-8, 8);
            _ = y.argsort(1).sum().item<long>();
            _ = nn.functional.cross_entropy(x, arange(64L) % 64).item<float>();
        }
        return ProcessRss().Rss ?? 0;
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
        long evalPart = Parts.GetValueOrDefault("eval");
        string evalHint = evalPart > 0 ? $", evaluation {Gib(evalPart)}" : "";
        string evalFlag = evalPart > Parts["activations"] ? " or a smaller --eval-batch-size (the evaluation's logits are the largest part)" : "";
        if (availableGpu is { } g && GpuBytes > g)
            throw new QuantSharpException($"estimated peak GPU memory {Gib(GpuBytes)} exceeds the {Gib(g)} free on {gpuName} " +
                $"(model {Gib(Parts["model"])}, calibration activations {Gib(Parts["activations"])}, layer working set " +
                $"{Gib(Parts["layer_forward"] + Parts["hessians"] + Parts["folded_weights"] + Parts["solve"])}{evalHint}). Lower it with " +
                "--cpu-offload-modules (one decoder layer on the GPU at a time), --cpu-offload-activations (activations in CPU " +
                $"memory), fewer --num-sequences or a smaller --calib-batch-size{evalFlag}.");
        if (availableCpu is { } c && CpuBytes > c)
            throw new QuantSharpException($"estimated peak CPU memory {Gib(CpuBytes)} exceeds the {Gib(c)} available " +
                $"(model {Gib(Parts["model"])}, calibration activations {Gib(Parts["activations"])}{evalHint}). Lower it with fewer " +
                $"--num-sequences, a shorter --seq-len or a smaller --calib-batch-size{evalFlag}" +
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
                    return ProcKilobytes(line);
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

        static long Kb(string line) => ProcKilobytes(line) ?? 0;
    }

    /// <summary>
    /// The value of a /proc "Name:\t  1234 kB" line in bytes, or null when it has none. The separator is a tab plus
    /// padding that disappears for 8-digit values ("VmHWM:\t27119232 kB"), so split on any whitespace after the colon.
    /// </summary>
    internal static long? ProcKilobytes(string line)
    {
        int colon = line.IndexOf(':');
        if (colon < 0) return null;
        var parts = line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return parts.Length > 0 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb) ? kb * 1024 : null;
    }

    /// <summary>Resets the kernel's RSS high-water mark (VmHWM) so a later <see cref="ProcessRss"/> peak covers one phase.</summary>
    public static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
