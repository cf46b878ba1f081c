using System.Diagnostics;
using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>What a low-memory run did and what it cost, measured (not estimated).</summary>
public sealed record LowMemoryResult(IReadOnlyList<LayerQuantReport> Reports, long InputBytes, double Seconds,
    long? BaselineRssBytes, long MaxManagedHeapBytes, int Tensors)
{
    /// <summary>What the run warned about (GPTQ's per-layer warnings, e.g. an RTN fallback), each naming its linear.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// INC's layer-wise (low-memory) mode: the checkpoint is never loaded. For the data-free methods tensors are read one
/// at a time from the safetensors files (positional reads of just that tensor's bytes), each decoder linear is
/// quantized (RTN with every format and INC option, or HQQ) and packed at once, and everything is streamed into the
/// output shards of QuantSharp's format (docs/quantsharp-format.md) as it goes, so memory holds one tensor and its
/// quantization working set, never a layer or the model. The output is byte-identical to quantizing the loaded model
/// and saving it: the same quantization rule (<see cref="DataFreeLinearQuantizer"/>), the same packer, the same shard
/// writer, the same tensor order (<see cref="ModelLayout"/>).
/// <para>
/// GPTQ (INC's use_layer_wise with GPTQ) needs calibration activations flowing through the quantized layers: then
/// the unit is one decoder layer instead of one tensor (<see cref="CalibratedLayerStream"/>), with the in-memory
/// pipeline's own per-layer step, so the folder is again byte-identical to the normal mode's. AWQ, TEQ and AutoRound
/// optimise whole blocks against float block outputs and are refused with a message naming the supported methods.
/// </para>
/// </summary>
public static class LowMemoryQuantizer
{
    /// <summary>The methods this mode runs, as the refusal names them.</summary>
    public const string SupportedMethods = "rtn, hqq and gptq";

    /// <summary>Throws unless every linear's configuration can be quantized in this mode.</summary>
    public static void Check(QuantizationConfig config)
    {
        const string flag = "--layer-wise";
        if (config.Activations is not null)
            throw new QuantSharpException($"{flag}: activation quantization (--a-bits {config.Activations.Bits}) is not supported in the " +
                                          "low-memory mode, which is weight-only (e.g. W4A16); drop --a-bits.");
        if (config.Transform != TransformKind.Identity)
            throw new QuantSharpException($"{flag}: rotations (--transform) are not supported in the low-memory mode.");
        if (config.KvCache is not null)
            throw new QuantSharpException($"{flag}: KV-cache quantization is not held by the saved format; drop --k-bits/--v-bits.");
        QuantSharpExporter.Check(config);
        foreach (var c in config.AllLinearConfigs.Where(c => c.Weights is not null))
        {
            if (c.Method is not (QuantMethod.Rtn or QuantMethod.Hqq or QuantMethod.Gptq))
                throw new QuantSharpException($"{flag}: {c.Method.ToString().ToLowerInvariant()} optimises a whole decoder block against its " +
                                              $"float outputs, which the low-memory mode does not run; it supports {SupportedMethods}.");
            // Calibrated runs hold a whole layer (CalibratedLayerStream), so q/k/v and gate/up can share their scale there.
            if (c.FuseGlobalScale && c.Weights!.Format == QuantFormat.NvFp && !config.NeedsCalibration)
                throw new QuantSharpException($"{flag}: --fuse-global-scale shares one NVFP scale over q/k/v and gate/up, which needs " +
                                              "several tensors at once; drop it in the low-memory mode.");
        }
    }

    /// <param name="dtype">The dtype the normal mode would load the model in (float tensors are written in it).</param>
    /// <param name="recipe">The INC-style recipe written into qconfig.json, or null.</param>
    /// <param name="layerConfigs">Per linear, its INC configuration (qconfig.json's "config"); null derives it from the spec.</param>
    /// <param name="progress">(tensors done, tensors in all).</param>
    /// <param name="calibration">The calibration windows when some linear uses GPTQ (drawn as for the normal mode).</param>
    public static LowMemoryResult Run(string modelDir, QuantizationConfig config, ScalarType dtype, string outDir,
        bool overwrite = false, string outFlag = "--save", JsonNode? recipe = null,
        IReadOnlyDictionary<string, JsonObject>? layerConfigs = null, Action<int, int>? progress = null, int[][]? calibration = null)
    {
        config.Validate();
        Check(config);
        if (config.NeedsCalibration && (calibration is null || calibration.Length == 0))
            throw new QuantSharpException("--layer-wise with gptq needs calibration data (--calib FILE): the Hessians come from it.");
        var clock = Stopwatch.StartNew();
        var modelConfig = ModelConfig.Load(modelDir);
        using var checkpoint = SafetensorsCheckpoint.Open(modelDir);
        Backend.TorchRuntime.EnsureNativeLoaded();
        Backend.CpuHeapSettings.Apply();   // freed tensors must go back to the OS for the peak to stay at one tensor (or layer)
        long? baseline = MemoryEstimate.ProcessRss().Rss;
        // The packed output is smaller than the input at the model dtype; the float part may grow (bf16 → fp32).
        long bound = ModelLayout.Parameters(modelConfig).Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b)) * DTypeBytes(dtype);
        DiskSpace.Require(outDir, bound, outFlag);

        var reports = new List<LayerQuantReport>();
        var stats = new Stats();
        var plan = Plan(modelConfig, config);
        var warnings = new List<string>();
        using var calibrated = config.NeedsCalibration
            ? new CalibratedLayerStream(modelConfig, dtype, config, calibration!, reports, warnings) : null;
        ExportFolder.Write(outDir, overwrite, outFlag, tmp =>
        {
            var layers = new JsonObject();
            ExportFolder.WriteTensors(tmp, Tensors(checkpoint, modelDir, plan, dtype, layers, layerConfigs, reports, stats, progress, calibrated));
            QuantSharpExporter.WriteMetadata(tmp, modelConfig, dtype, modelDir, Api.LinearNames.Of(modelConfig), layers, recipe,
                layerConfigs, headUntied: modelConfig.TieWordEmbeddings && plan.Any(s => s.Slot.Name == "lm_head.weight"));
        });
        return new LowMemoryResult(reports, checkpoint.TotalBytes, clock.Elapsed.TotalSeconds, baseline, stats.MaxManagedHeap, plan.Count)
        {
            Warnings = warnings,
        };
    }

    /// <summary>
    /// One output tensor: where it comes from, and the configuration that quantizes it (null: written as it is).
    /// A tied model whose lm_head is quantized gets lm_head last, read from the embeddings, as the loaded model unties it.
    /// </summary>
    private sealed record Step(ParameterSlot Slot, string Source, string? Linear, QuantizationConfig? Quantize, bool IsHead);

    private static List<Step> Plan(ModelConfig model, QuantizationConfig config)
    {
        var steps = new List<Step>();
        var headConfig = config.PerLinear?.Resolve(OutputHeadQuantizer.Name) is { Weights: not null } ? config.For(OutputHeadQuantizer.Name) : null;
        foreach (var slot in ModelLayout.Parameters(model))
        {
            string? linear = slot.Name.EndsWith(".weight", StringComparison.Ordinal) && slot.Shape.Length == 2 && slot.Name != "model.embed_tokens.weight"
                ? slot.Name[..^".weight".Length] : null;
            bool isHead = linear == OutputHeadQuantizer.Name;
            var c = linear is null ? null : isHead ? headConfig : config.For(linear) is { Weights: not null } lc ? lc : null;
            steps.Add(new Step(slot, slot.Name, linear, c, isHead));
        }
        if (model.TieWordEmbeddings && headConfig is not null)
            steps.Add(new Step(new ParameterSlot("lm_head.weight", [model.VocabSize, model.HiddenSize]), "model.embed_tokens.weight",
                OutputHeadQuantizer.Name, headConfig, IsHead: true));
        return steps;
    }

    private sealed class Stats
    {
        public long MaxManagedHeap;
    }

    private static IEnumerable<ExportTensor> Tensors(SafetensorsCheckpoint checkpoint, string source, List<Step> plan, ScalarType dtype,
        JsonObject layers, IReadOnlyDictionary<string, JsonObject>? layerConfigs, List<LayerQuantReport> reports, Stats stats,
        Action<int, int>? progress, CalibratedLayerStream? calibrated)
    {
        using var noGrad = no_grad();
        Tensor Read(string name, long[] shape)
        {
            if (!checkpoint.Contains(name)) throw new InvalidFileException(source, "tensor missing from the checkpoint", name);
            return Models.CausalLM.Checked(checkpoint.Read(name), name, shape, dtype, CPU, source);
        }
        for (int i = 0; i < plan.Count; i++)
        {
            var step = plan[i];
            // Calibrated runs take a decoder layer whole: its tensors are consecutive in the plan.
            if (calibrated is not null && LayerIndexOf(step.Slot.Name) is int layer)
            {
                int end = i;
                while (end < plan.Count && LayerIndexOf(plan[end].Slot.Name) == layer) end++;
                var slots = plan.GetRange(i, end - i).Select(s => s.Slot).ToList();
                foreach (var written in calibrated.Layer(layer, slots, Read, layers, layerConfigs)) yield return written;
                stats.MaxManagedHeap = Math.Max(stats.MaxManagedHeap, GC.GetTotalMemory(forceFullCollection: false));
                progress?.Invoke(end, plan.Count);
                i = end - 1;
                continue;
            }
            // Everything of this tensor (read, float32 copy, quantizer temporaries, packed codes) lives in this scope,
            // which ends once the writer has copied the yielded tensors to disk.
            using var scope = NewDisposeScope();
            Tensor t = Read(step.Source, step.Slot.Shape);
            if (calibrated is not null && step.Slot.Name == "model.embed_tokens.weight")
            {
                // The table passes once: layer 0's calibration inputs are looked up in it on the way to the output.
                using var embed = new TokenEmbedding("embed_tokens", t);
                calibrated.Embed(embed);
                yield return new ExportTensor(step.Slot.Name, embed.Weight);
            }
            else if (step.Quantize is not { Weights: { } spec } c)
            {
                yield return new ExportTensor(step.Slot.Name, t);
            }
            else
            {
                foreach (var packed in Quantize(t, step, c, spec, dtype, layers, layerConfigs, reports)) yield return packed;
            }
            stats.MaxManagedHeap = Math.Max(stats.MaxManagedHeap, GC.GetTotalMemory(forceFullCollection: false));
            progress?.Invoke(i + 1, plan.Count);
        }
    }

    /// <summary>The decoder layer a parameter belongs to (model.layers.N.…), or null.</summary>
    private static int? LayerIndexOf(string name)
    {
        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = name.IndexOf('.', prefix.Length);
        return int.Parse(name.AsSpan(prefix.Length, dot - prefix.Length), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Elements of one row block when a linear is quantized in blocks of rows (see <see cref="RowLocal"/>): about
    /// 40 bytes of working set each (float32 copy, quantizer temporaries, codes, the exactness check), so 2²² keep a
    /// block near 160 MiB whatever the linear's size. Tests lower it to exercise the block path on small models.
    /// </summary>
    internal static long BlockElements { get; set; } = 1L << 22;

    /// <summary>
    /// True when every output row's codes and parameters depend on that row alone, so quantizing row blocks gives
    /// the whole tensor's bytes: round-to-nearest, groups along the input (group_dim 1) or per row, the min-max
    /// observer, the INC formats without a per-tensor scale (not NVFP, not fp8_aware's power of two) and no double
    /// quantization (whose groups span rows); other formats are taken whole until shown row-local. INC's clip
    /// search picks one ratio per tensor, HQQ's early stop watches the whole tensor's error: those take the tensor whole.
    /// </summary>
    private static bool RowLocal(QuantizationConfig c, QuantSpec spec) =>
        c.Method == QuantMethod.Rtn && spec.GroupDim == 1 && spec.GroupSize != QuantSpec.PerTensor && spec.DoubleQuant is null
        && spec.Observer == ObserverKind.MinMax && !spec.Fp8Aware
        && spec.Format is QuantFormat.Int or QuantFormat.Nf4 or QuantFormat.Fp4Bnb or QuantFormat.Fp4E2M1Inc;

    /// <summary>The normal mode's steps for one linear: float32 copy, quantize, round to the model dtype, pack.</summary>
    private static List<ExportTensor> Quantize(Tensor weight, Step step, QuantizationConfig c, QuantSpec spec, ScalarType dtype,
        JsonObject layers, IReadOnlyDictionary<string, JsonObject>? layerConfigs, List<LayerQuantReport> reports)
    {
        string name = step.Linear!;
        var quantizer = WeightQuantizer.Create(spec);
        long rows = weight.shape[0], columns = weight.shape[1];
        long blockRows = RowLocal(c, spec) ? Math.Clamp(BlockElements / columns, 1, rows) : rows;
        var blocks = new List<List<ExportTensor>>();
        JsonObject? storage = null;
        double errorSum = 0, weightSum = 0;
        for (long r0 = 0; r0 < rows; r0 += blockRows)
        {
            using var scope = NewDisposeScope();
            Tensor w32 = weight.narrow(0, r0, Math.Min(blockRows, rows - r0)).to(float32);
            Tensor dq;
            GroupParams p;
            if (step.IsHead) (dq, p) = OutputHeadQuantizer.Quantize(w32, spec, quantizer);
            else
            {
                using Tensor? global = quantizer.ComputeGlobalScale(w32);
                (dq, p) = DataFreeLinearQuantizer.Quantize(w32, spec, quantizer, c.Method == QuantMethod.Hqq ? c.Hqq : null, global, name);
            }
            errorSum += dq.sub(w32).pow(2).sum().to(float64).item<double>();
            weightSum += w32.pow(2).sum().to(float64).item<double>();
            w32.Dispose();
            Tensor stored = dq.to(dtype);
            var blockLayers = new JsonObject();
            var packed = QuantSharpExporter.PackInto(new QuantSharpExporter.Packed(name, stored, p, spec, c), blockLayers, layerConfigs);
            foreach (var t in packed) t.Tensor.MoveToOuterDisposeScope();
            blocks.Add(packed);
            storage ??= (JsonObject)blockLayers[name]!.DeepClone();
        }
        reports.Add(new LayerQuantReport(name, errorSum / (weightSum + 1e-12), false, null));
        storage!["storage"]!["shape"] = new JsonArray(rows, columns);
        layers[name] = storage;
        if (blocks.Count == 1) return blocks[0];
        return JoinRowBlocks(name, blocks);
    }

    /// <summary>Row blocks' packed tensors joined along the rows (g_idx, one per input column, is the same in each).</summary>
    private static List<ExportTensor> JoinRowBlocks(string name, List<List<ExportTensor>> blocks)
    {
        var names = blocks[0].Select(t => t.Name).ToArray();
        if (blocks.Any(b => !b.Select(t => t.Name).SequenceEqual(names)))
            throw new InvalidOperationException($"{name}: row blocks packed into different tensors; row-local quantization assumed wrongly.");
        var joined = new List<ExportTensor>();
        for (int k = 0; k < names.Length; k++)
        {
            if (names[k].EndsWith(".g_idx", StringComparison.Ordinal))
            {
                joined.Add(blocks[0][k]);
                continue;
            }
            joined.Add(blocks[0][k] with { Tensor = cat(blocks.Select(b => b[k].Tensor).ToArray(), 0) });
            foreach (var b in blocks) b[k].Tensor.Dispose();
        }
        return joined;
    }

    private static long DTypeBytes(ScalarType t) => t switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        _ => 2,
    };
}

