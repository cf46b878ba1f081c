using System.Diagnostics;
using QuantSharp.Api;
using QuantSharp.Models;
using QuantSharp.Quantization;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// <c>quantize --layer-wise --save DIR</c>: the low-memory mode (<see cref="LowMemoryQuantizer"/>; GPTQ with the
/// calibration windows the normal mode would draw). The model is never
/// loaded, so there is no perplexity here (<c>quantsharp eval --model DIR</c> scores the saved folder); the JSON
/// report has the measured memory: the process's peak RSS (VmHWM: managed heap, libtorch and the .NET runtime
/// together), the RSS of the runtime alone before the first tensor, and the GC's view.
/// </summary>
internal static class LayerWiseRun
{
    public static int Execute(string dir, QuantizationConfig config, WeightOnlyConfig? recipe, string? recipePath, torch.ScalarType dtype,
        string? saveDir, bool overwrite, string? jsonPath, bool quiet, Func<QuantizationConfig, int[][]> loadCalibration,
        bool skipMemoryCheck)
    {
        if (saveDir is null) throw new QuantSharpException("--layer-wise writes the quantized model as it goes: pass --save DIR.");
        if (config.Checkpoint is not null) throw new QuantSharpException("--layer-wise has no layer checkpoints: drop --checkpoint-dir/--resume.");
        var wall = Stopwatch.StartNew();
        var modelConfig = ModelConfig.Load(dir);
        ResolvedRecipe? resolved = null;
        if (recipe is not null)
        {
            resolved = ResolvedRecipe.Resolve(modelConfig, recipe, config, recipePath!);
            foreach (var w in resolved.Warnings) Console.Error.WriteLine("warning: " + w);
            config = resolved.Pipeline;
        }
        LowMemoryQuantizer.Check(config);
        int[][]? calibration = config.NeedsCalibration ? loadCalibration(config) : null;
        // GPTQ holds a layer, its Hessians and the calibration activations: estimated (and checked) as the normal mode
        // does. The data-free path holds one tensor and needs no estimate.
        MemoryEstimate? memory = null;
        if (calibration is not null)
        {
            memory = MemoryEstimate.ForLayerWise(modelConfig, dtype, config, MemoryEstimate.RuntimeBaseline());
            if (!quiet) Console.WriteLine($"estimated peak memory: CPU {memory.CpuBytes / (double)(1L << 30):F2} GiB");
            if (!skipMemoryCheck) memory.Check(MemoryEstimate.AvailableCpuBytes(), null, "cpu");
        }
        if (!quiet)
            Console.WriteLine($"layer-wise (low-memory) quantization of {Path.GetFullPath(dir)} ({dtype}, CPU), " +
                              (calibration is null ? "one tensor at a time" : $"one decoder layer at a time, {calibration.Length} × {config.SeqLen} calibration tokens"));
        MemoryEstimate.ResetPeakRss();
        var result = CliCommon.WithProgress("quantize tensors", quiet, p =>
            LowMemoryQuantizer.Run(dir, config, dtype, saveDir, overwrite, "--save",
                resolved is null ? null : RecipeJson.ToRecipe(resolved.Root),
                resolved?.ByLinear.ToDictionary(kv => kv.Key, kv => RecipeJson.Settings(kv.Value)),
                (done, all) => p(done, all), calibration));
        foreach (var w in result.Warnings) Console.Error.WriteLine("warning: " + w);
        var (rss, peak) = MemoryEstimate.ProcessRss();
        var gc = GC.GetGCMemoryInfo();
        const double MiB = 1 << 20;
        Console.WriteLine($"quantized {result.Reports.Count} linears of {result.InputBytes / MiB:F0} MiB in {result.Seconds:F1} s; " +
                          $"peak RSS {peak / MiB:F0} MiB (runtime alone {result.BaselineRssBytes / MiB:F0} MiB), " +
                          $"managed heap at most {result.MaxManagedHeapBytes / MiB:F0} MiB; saved quantsharp model to {saveDir}");
        if (jsonPath is not null)
        {
            JsonOutput.Write(jsonPath, new
            {
                mode = "layer-wise",
                model = Path.GetFullPath(dir),
                dtype = dtype.ToString(),
                recipe = resolved is null ? null : RecipeJson.ToRecipe(resolved.Root),
                method = config.Method.ToString().ToLowerInvariant(),
                num_sequences = calibration?.Length,
                seq_len = calibration is null ? (int?)null : config.SeqLen,
                warnings = result.Warnings,
                format = config.Weights?.FormatName,
                w_bits = config.Weights?.Bits,
                w_group_size = config.Weights?.GroupSize,
                symmetric = config.Weights?.Symmetric,
                input_bytes = result.InputBytes,
                tensors = result.Tensors,
                quantize_seconds = result.Seconds,
                total_seconds = wall.Elapsed.TotalSeconds,
                peak_rss_bytes = peak,
                estimated_peak_cpu_bytes = memory?.CpuBytes,
                memory_estimate_parts = memory?.Parts,
                final_rss_bytes = rss,
                runtime_baseline_rss_bytes = result.BaselineRssBytes,
                max_managed_heap_bytes = result.MaxManagedHeapBytes,
                gc_heap_hard_limit_bytes = gc.TotalAvailableMemoryBytes,
                gc_heap_size_bytes = gc.HeapSizeBytes,
                gc_committed_bytes = gc.TotalCommittedBytes,
                gc_total_allocated_bytes = GC.GetTotalAllocatedBytes(),
                gc_collections = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) },
                save = Path.GetFullPath(saveDir),
                layers = result.Reports.Select(x => new { name = x.Name, relative_mse = x.RelativeError }),
            });
        }
        return 0;
    }
}
