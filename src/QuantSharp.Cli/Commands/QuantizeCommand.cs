using System.CommandLine;
using System.Diagnostics;
using QuantSharp.Algorithms.Gptq;
using QuantSharp.Algorithms.Hqq;
using QuantSharp.Api;
using QuantSharp.Backend;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Export;
using QuantSharp.Formats;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// <c>quantsharp quantize</c>: load → calibrate → quantize layer by layer → evaluate → export. Accepts FP-Quant's
/// model_quant.py spellings (--w_bits, --gptq, --transform_class, --hadamard_group_size, ...) so its users can paste
/// their command. With no arguments it runs the embedded default: micro-qwen3 from testdata/, NVFP4 MR-GPTQ W4A4.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "--model_name_or_path") { Description = "model folder (default: the embedded testdata/models/micro-qwen3)" };
        var preset = new Option<string?>("--preset") { Description = "mr-gptq: nvfp4 W4A4, hadamard 16, mse observer, act-order GPTQ" };
        var format = new Option<string?>("--format") { Description = "int | fp | mxfp | nvfp | fp8 | nf4 | fp4 (= fp4_e2m1_bnb) | fp4_e2m1" };
        var wBits = new Option<int?>("--w-bits", "--w_bits") { Description = "weight bits (16 = keep)" };
        var aBits = new Option<int?>("--a-bits", "--a_bits") { Description = "activation bits (16 = keep)" };
        var wGroup = new Option<int?>("--w-group-size", "--w_group_size") { Description = "weight group size (-1 per channel, 0 per tensor)" };
        var aGroup = new Option<int?>("--a-group-size", "--a_group_size") { Description = "activation group size (-1 per token)" };
        var wGran = new Option<string?>("--w-granularity", "--w_granularity") { Description = "tensor | channel | group" };
        var method = new Option<string?>("--method") { Description = "rtn | gptq | hqq | awq | teq | autoround | flatquant" };
        var gptqFlag = new Option<bool>("--gptq") { Description = "same as --method gptq (FP-Quant spelling)" };
        var observer = new Option<string?>("--w-observer", "--w_observer") { Description = "minmax | mse" };
        var order = new Option<string?>("--quantization-order", "--quantization_order") { Description = "default | activation (act-order)" };
        var gar = new Option<bool>("--gar") { Description = "group-aware reordering in GPTQ" };
        var lazyGroups = new Option<bool>("--dynamic-groups") { Description = "classic GPTQ: group scales from the error-updated weight" };
        var relDamp = new Option<double?>("--rel-damp", "--rel_damp") { Description = "GPTQ dampening, fraction of mean(diag H)" };
        var gptqBlock = new Option<int?>("--gptq-block-size") { Description = "GPTQ lazy-update block in columns (default 128; INC's block_size default is 2048; with --dynamic-groups it decides which updates a group's scales see)" };
        var transform = new Option<string?>("--transform", "--transform-class", "--transform_class") { Description = "identity | hadamard | dct | dst | gsr | fast_food" };
        var tGroup = new Option<int?>("--transform-group-size", "--hadamard-group-size", "--hadamard_group_size") { Description = "rotation block size" };
        var randomSigns = new Option<bool>("--random-signs") { Description = "Hadamard with seeded random ±1 signs" };
        var mxRule = new Option<string?>("--mx-scale-rule") { Description = "fpquant (default: group max in [3,6), never clipped) | ocp" };
        var asym = new Option<bool>("--asym") { Description = "asymmetric int (zero points)" };
        var fp8Aware = new Option<bool>("--fp8-aware", "--fp8_aware") { Description = "int weights whose dequantized values are FP8 E4M3 (INC's DPQ fp8_aware GPTQ)" };
        var fp8Variant = new Option<string?>("--fp8-variant") { Description = "E4M3 of --fp8-aware and --format fp8: ocp (E4M3FN, max 448; default) | gaudi (finite-only bias 8, max 240)" };
        var fuse = new Option<bool>("--fuse-global-scale", "--fuse_global_scale") { Description = "share NVFP weight global scales over q/k/v and gate/up" };
        var calib = new Option<string?>("--calib") { Description = "calibration text or JSONL (default: testdata/data/calib.txt)" };
        var numSeq = new Option<int?>("--num-sequences", "--num_sequences") { Description = "calibration windows (default 128)" };
        var seqLen = new Option<int?>("--seq-len", "--sequence_length") { Description = "calibration window length (default 512)" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42 };
        var calibBatch = new Option<int>("--calib-batch-size") { DefaultValueFactory = _ => 8 };
        var offloadAct = new Option<bool>("--cpu-offload-activations", "--cpu_offload_activations") { Description = "keep calibration activations in CPU memory" };
        var offloadMod = new Option<bool>("--cpu-offload-modules", "--cpu_offload_modules") { Description = "keep the model in CPU memory and stream one layer at a time to the GPU" };
        var eval = new Option<string?>("--eval") { Description = "text to measure perplexity on (default: testdata/data/eval_a.txt)" };
        var evalSeq = new Option<int>("--eval-seq-len") { DefaultValueFactory = _ => 512 };
        var evalMax = new Option<int?>("--eval-max-windows") { Description = "score only the first K windows" };
        var evalBatch = new Option<int>("--eval-batch-size") { DefaultValueFactory = _ => 4 };
        var noBefore = new Option<bool>("--skip-baseline") { Description = "do not measure the unquantized perplexity" };
        var save = new Option<string?>("--save", "--save_path") { Description = "write the quantized model here" };
        var export = new Option<string?>("--export") { Description = PackedExporter.Known + " (default: pseudoquant; quantsharp with --recipe)" };
        var recipeOption = new Option<string?>("--recipe") { Description = "INC-style JSON recipe: per-algorithm global settings and per-layer local rules (docs/recipes.md)" };
        var layerWise = new Option<bool>("--layer-wise") { Description = "low-memory mode (rtn, hqq, gptq): stream the checkpoint into the --save folder (quantsharp format) without loading the model, one tensor at a time (gptq: one decoder layer at a time, with --calib); no perplexity" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing --save folder" };
        var json = new Option<string?>("--json") { Description = "write a JSON report here" };
        var dtype = new Option<string>("--dtype") { Description = "auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16", DefaultValueFactory = _ => "auto" };
        var device = CliCommon.DeviceOption();
        var quiet = new Option<bool>("--quiet");
        var inc = new IncWeightOnlyOptions();
        var checkpointDir = new Option<string?>("--checkpoint-dir") { Description = "checkpoint after every decoder layer into DIR; continues from DIR's checkpoint if it has one" };
        var resume = new Option<string?>("--resume") { Description = "continue the interrupted run checkpointed in DIR (same model, recipe and calibration)" };
        var skipMemoryCheck = new Option<bool>("--skip-memory-check") { Description = "start even when the estimated peak memory exceeds what is available" };
        var rtnFallback = new Option<bool>("--allow-rtn-fallback") { Description = "quantize a GPTQ layer whose Hessian stays non-positive-definite with RTN (warned) instead of stopping" };
        // KV cache and FlatQuant (--method flatquant) flags.
        var kBits = new Option<int?>("--k-bits", "--k_bits") { Description = "KV cache: key bits (16 = keep; needs --w-bits or --a-bits < 16)" };
        var vBits = new Option<int?>("--v-bits", "--v_bits") { Description = "KV cache: value bits (16 = keep)" };
        var kvAsym = new Option<bool>("--kv-asym") { Description = "KV cache: asymmetric (zero point) quantization" };
        var kvGroup = new Option<int?>("--kv-group-size") { Description = "KV cache: group size along each head (default 128, capped at head_dim)" };
        var epochs = new Option<int?>("--epochs") { Description = "flatquant: training epochs per layer (default 15)" };
        var lwc = new Option<bool>("--lwc") { Description = "flatquant: learnable weight clipping" };
        var lac = new Option<bool>("--lac") { Description = "flatquant: learnable activation (and KV) clipping" };
        var addDiag = new Option<bool>("--add-diag") { Description = "flatquant: learnable per-channel smoothing (SmoothQuant-style init)" };
        var aAsym = new Option<bool>("--a-asym") { Description = "flatquant: asymmetric per-token activations" };
        var blockOptions = new BlockMethodOptions();
        // One --lr for every trained method (TEQ, AutoRound, FlatQuant) and one --resume (layer checkpoints; FlatQuant its own).
        var lr = blockOptions.Lr;

        var cmd = new Command("quantize", "Quantize a model layer by layer (RTN or GPTQ; INT/FP4/MXFP4/NVFP4; rotations; W4A4) and report perplexity.")
        {
            model, preset, format, wBits, aBits, wGroup, aGroup, wGran, method, gptqFlag, observer, order, gar, lazyGroups, relDamp, gptqBlock,
            transform, tGroup, randomSigns, mxRule, asym, fp8Aware, fp8Variant, fuse, calib, numSeq, seqLen, seed, calibBatch, offloadAct, offloadMod,
            eval, evalSeq, evalMax, evalBatch, noBefore, save, export, layerWise, overwrite, json, dtype, device, quiet,
            checkpointDir, resume, rtnFallback, skipMemoryCheck,
            kBits, vBits, kvAsym, kvGroup, epochs, lwc, lac, addDiag, aAsym, recipeOption,
        };
        inc.AddTo(cmd);
        foreach (var o in blockOptions.All) cmd.Options.Add(o);
        var directInv = new Option<bool>("--direct-inv", "--direct_inv") { Description = "FlatQuant: train each transform matrix directly (inverse solved in float64) instead of U·diag(σ)·Vᵀ with Cayley-orthogonal U, V" };
        cmd.Options.Add(directInv);
        var flatFlags = new FlatQuantRun.Flags(model, wBits, aBits, kBits, vBits, kvAsym, kvGroup, epochs, lr, lwc, lac, addDiag, aAsym,
            gptqFlag, relDamp, resume, calib, numSeq, seqLen, seed, calibBatch, eval, evalSeq, evalMax, evalBatch, noBefore, save, export,
            overwrite, json, dtype, device, quiet, directInv);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            if (r.GetValue(method) == "flatquant") return FlatQuantRun.Execute(r, flatFlags);
            var wall = Stopwatch.StartNew();
            bool embedded = r.GetValue(model) is null;
            string dir = CliCommon.RequireModelDir(r.GetValue(model) ?? EmbeddedDefaults.Model());
            // --recipe sets the weight formats and algorithms per layer; the flags that would also set them are refused.
            string? recipePath = r.GetValue(recipeOption);
            WeightOnlyConfig? recipe = recipePath is null ? null : RecipeJson.Load(recipePath);
            if (recipe is not null)
            {
                var clash = new (string Flag, bool Set)[]
                {
                    ("--preset", r.GetValue(preset) is not null), ("--format", r.GetValue(format) is not null), ("--w-bits", r.GetValue(wBits) is not null),
                    ("--w-group-size", r.GetValue(wGroup) is not null), ("--w-granularity", r.GetValue(wGran) is not null),
                    ("--method", r.GetValue(method) is not null), ("--gptq", r.GetValue(gptqFlag)), ("--w-observer", r.GetValue(observer) is not null),
                    ("--quantization-order", r.GetValue(order) is not null), ("--gar", r.GetValue(gar)), ("--dynamic-groups", r.GetValue(lazyGroups)),
                    ("--rel-damp", r.GetValue(relDamp) is not null), ("--asym", r.GetValue(asym)), ("--fp8-aware", r.GetValue(fp8Aware)), ("--transform", r.GetValue(transform) is not null),
                    ("--a-bits", r.GetValue(aBits) is not null and < 16),
                }.FirstOrDefault(x => x.Set);
                if (clash.Flag is not null)
                    throw new QuantSharpException($"{clash.Flag} conflicts with --recipe {recipePath}: the recipe sets the weight formats and algorithms (put the setting in the recipe).");
            }
            string presetName = r.GetValue(preset) ?? (embedded && recipe is null && r.GetValue(method) is null ? "mr-gptq" : "");
            bool mr = presetName switch
            {
                "" => false,
                "mr-gptq" => true,
                _ => throw new QuantSharpException($"--preset {presetName}: unknown (known: mr-gptq)."),
            };

            // Resolve the format and its fixed group sizes (FP-Quant overrides nvfp/mxfp groups; we say so).
            var fmt = ParseFormat(r.GetValue(format) ?? (mr ? "nvfp" : "int"));
            int wb = r.GetValue(wBits) ?? 4;
            int ab = r.GetValue(aBits) ?? (mr ? 4 : 16);
            var obs = ParseObserver(r.GetValue(observer) ?? (mr ? "mse" : "minmax"));
            var rule = (r.GetValue(mxRule) ?? "fpquant") switch
            {
                "fpquant" => MxScaleRule.FpQuant,
                "ocp" => MxScaleRule.Ocp,
                var x => throw new QuantSharpException($"--mx-scale-rule {x}: expected fpquant or ocp."),
            };
            var variant = E4M3Variants.Parse(r.GetValue(fp8Variant) ?? "ocp", "--fp8-variant");
            if (r.GetValue(fp8Variant) is not null && !r.GetValue(fp8Aware) && fmt != QuantFormat.Fp8)
                throw new QuantSharpException("--fp8-variant applies to --fp8-aware or --format fp8.");
            int wg = ResolveGroup(fmt, r.GetValue(wGroup), r.GetValue(wGran), "--w-", 128);
            int ag = ResolveGroup(fmt, r.GetValue(aGroup), null, "--a-", QuantSpec.PerChannel);
            QuantMethod? blockMethod = BlockMethodOptions.ParseMethod(r.GetValue(method) ?? "rtn");
            var quantMethod = blockMethod ?? (r.GetValue(gptqFlag) || mr ? QuantMethod.Gptq : (r.GetValue(method) ?? "rtn").ToLowerInvariant() switch
            {
                "rtn" => QuantMethod.Rtn,
                "gptq" => QuantMethod.Gptq,
                "hqq" => QuantMethod.Hqq,
                var x => throw new QuantSharpException($"--method {x}: expected rtn, gptq, hqq, awq, teq or autoround."),
            });
            bool isGptq = quantMethod == QuantMethod.Gptq;
            bool actOrder = (r.GetValue(order) ?? (mr ? "activation" : "default")) switch
            {
                "default" => false,
                "activation" => true,
                var x => throw new QuantSharpException($"--quantization-order {x}: expected default or activation."),
            };
            var tKind = TransformKinds.Parse(r.GetValue(transform) ?? (mr ? "hadamard" : "identity"), "--transform");
            int tg = r.GetValue(tGroup) ?? (mr ? 16 : 128);

            var config = new QuantizationConfig
            {
                Method = quantMethod,
                Weights = wb >= 16 ? null : inc.Apply(r, new QuantSpec(fmt, wb, wg, !r.GetValue(asym), obs, rule))
                    with { Fp8Aware = r.GetValue(fp8Aware), Fp8Variant = variant },
                Hqq = inc.Hqq(r),
                Activations = ab >= 16 ? null : new QuantSpec(fmt, ab, ag, true, ObserverKind.MinMax, rule) { Fp8Variant = variant },
                Transform = tKind,
                TransformGroupSize = tg,
                TransformRandomSigns = r.GetValue(randomSigns),
                Gptq = new GptqOptions
                {
                    RelDamp = r.GetValue(relDamp) ?? 0.01,
                    BlockSize = r.GetValue(gptqBlock) is int bs ? (bs > 0 ? bs : throw new QuantSharpException($"--gptq-block-size {bs}: must be a positive number of columns.")) : 128,
                    ActOrder = actOrder,
                    GroupAwareReorder = r.GetValue(gar),
                    StaticGroups = !r.GetValue(lazyGroups),
                },
                FuseGlobalScale = r.GetValue(fuse),
                NumSequences = r.GetValue(numSeq) ?? 128,
                SeqLen = r.GetValue(seqLen) ?? 512,
                Seed = r.GetValue(seed),
                CalibBatchSize = r.GetValue(calibBatch),
                CpuOffloadActivations = r.GetValue(offloadAct),
                KvCache = (r.GetValue(kBits) ?? 16) < 16 || (r.GetValue(vBits) ?? 16) < 16
                    ? new KvCacheSpec(r.GetValue(kBits) ?? 16, r.GetValue(vBits) ?? 16, r.GetValue(kvGroup) ?? 128, r.GetValue(kvAsym))
                    : null,
            };
            if (r.GetValue(checkpointDir) is not null && r.GetValue(resume) is not null)
                throw new QuantSharpException("--checkpoint-dir and --resume both name a checkpoint folder; pass one of them.");
            config = config with
            {
                AllowRtnFallback = r.GetValue(rtnFallback),
                Checkpoint = r.GetValue(resume) is { } resumeDir ? new LayerCheckpoint(resumeDir, mustExist: true, "--resume")
                    : r.GetValue(checkpointDir) is { } ckDir ? new LayerCheckpoint(ckDir) : null,
            };
            if (recipe is not null)
            {
                // The pipeline settings of the run; formats and methods come from the recipe once the model is loaded.
                bool recipeCalibrates = new[] { recipe }.Concat(recipe.Local.Select(l => l.Config))
                    .Any(c => c is GptqConfig or AwqConfig or TeqConfig or AutoRoundConfig && !c.IsFloat);
                config = config with { Method = recipeCalibrates ? QuantMethod.Gptq : QuantMethod.Rtn, Weights = null, Activations = null };
            }
            else
            {
                config = blockOptions.Apply(r, config, samplesGiven: r.GetValue(numSeq) is not null);
                config.Validate();
                if (config.KvCache is { } kvSpec) kvSpec.Validate(ModelConfig.Load(dir).HeadDim);
                if (tKind == TransformKind.Identity && config.Weights is { GroupSize: > 0 } ws)
                    CheckDivides(dir, ws.GroupSize, "--w-group-size");
            }

            var dev = TorchRuntime.ResolveDevice(r.GetValue(device));
            Trace("device");
            string dt = r.GetValue(dtype)!;
            var scalar = dt == "auto" ? (dev.type == DeviceType.CUDA ? torch.bfloat16 : torch.float32) : CliCommon.ParseDType(dt);
            // --cpu-offload-modules: the model stays in CPU memory; layers visit the GPU one at a time while quantizing, and
            // the whole model moves there only to be evaluated.
            bool streamLayers = r.GetValue(offloadMod) && dev.type == DeviceType.CUDA;
            if (streamLayers) config = config with { ComputeDevice = dev };
            bool q = r.GetValue(quiet);
            Say(q, $"model {Path.GetFullPath(dir)}  ({scalar} on {dev})");
            Say(q, recipe is null ? $"recipe {Describe(config)}" : $"recipe {Path.GetFullPath(recipePath!)}");

            // Parse the export format before the long run, so a typo fails at once.
            bool lowMemory = r.GetValue(layerWise);
            string exportName = r.GetValue(export) ?? (recipe is null && !lowMemory ? "pseudoquant" : "quantsharp");
            var exportFormat = PackedExporter.Parse(exportName, "--export");
            if (r.GetValue(save) is not null && config.KvCache is not null)
                Console.Error.WriteLine("warning: --k-bits/--v-bits are measured in this run but not recorded in the saved model (only --method flatquant's export keeps KV-cache quantization).");
            // The low-memory mode's own refusals first: they name --layer-wise and what it supports.
            if (lowMemory && recipe is null) LowMemoryQuantizer.Check(config);
            if (r.GetValue(save) is not null && recipe is null) PackedExporter.CheckCompatible(config, ModelConfig.Load(dir), exportFormat);
            if (r.GetValue(save) is not null && recipe is not null && exportFormat is not (ExportFormat.QuantSharp or ExportFormat.PseudoQuant))
                throw new QuantSharpException($"--export {exportName}: a --recipe run is saved with --export quantsharp (or pseudoquant); {exportName} holds one weight format for every linear.");
            if (lowMemory)
            {
                if (exportFormat != ExportFormat.QuantSharp)
                    throw new QuantSharpException($"--export {exportName}: --layer-wise writes QuantSharp's packed format only (--export quantsharp).");
                // GPTQ's calibration windows, drawn as the normal mode draws them; read only once the run is known to be valid.
                int[][] LayerWiseCalibration(QuantizationConfig c) =>
                    CalibrationData.Load(CliCommon.RequireFile(r.GetValue(calib) ?? EmbeddedDefaults.CalibText(), "--calib"),
                        BpeTokenizer.FromDirectory(dir), c.NumSequences, c.SeqLen, c.Seed);
                return LayerWiseRun.Execute(dir, config, recipe, recipePath, scalar, r.GetValue(save), r.GetValue(overwrite), r.GetValue(json), r.GetValue(quiet),
                    LayerWiseCalibration, r.GetValue(skipMemoryCheck));
            }
            var tokenizer = BpeTokenizer.FromDirectory(dir);
            string evalPath = CliCommon.RequireFile(r.GetValue(eval) ?? EmbeddedDefaults.EvalText(), "--eval");
            int[] evalIds = tokenizer.Encode(File.ReadAllText(evalPath));
            int? maxWindows = r.GetValue(evalMax) ?? (embedded ? 64 : null);
            int[][]? calibration = null;
            if (config.NeedsCalibration)
            {
                string calibPath = r.GetValue(calib) ?? EmbeddedDefaults.CalibText();
                calibration = CalibrationData.Load(calibPath, tokenizer, config.NumSequences, config.SeqLen, config.Seed);
            }
            Trace("data");

            // Estimate peak memory from the shapes before loading anything, and refuse what cannot fit.
            int evalWindows = PerplexityEvaluator.WindowCount(evalIds.Length, r.GetValue(evalSeq), maxWindows);
            var memory = MemoryEstimate.For(ModelConfig.Load(dir), scalar, config, dev.type == DeviceType.CUDA,
                MemoryEstimate.RuntimeBaseline(),
                evalWindows > 0 ? new EvalShape(Math.Min(r.GetValue(evalBatch), evalWindows), r.GetValue(evalSeq)) : null);
            long? freeGpu = MemoryEstimate.FreeGpuBytes(dev);
            Say(q, $"estimated peak memory: CPU {memory.CpuBytes / (double)(1L << 30):F2} GiB" +
                   (dev.type == DeviceType.CUDA ? $", GPU {memory.GpuBytes / (double)(1L << 30):F2} GiB" : ""));
            if (!r.GetValue(skipMemoryCheck)) memory.Check(MemoryEstimate.AvailableCpuBytes(), freeGpu, dev.ToString());

            var load = Stopwatch.StartNew();
            using var lm = CausalLM.Load(dir, scalar, streamLayers ? torch.CPU : dev);
            PerplexityResult EvaluateOnDevice(string label) => CliCommon.WithProgress(label, q, p =>
            {
                if (streamLayers) lm.MoveTo(dev);
                try { return PerplexityEvaluator.Evaluate(lm, evalIds, r.GetValue(evalSeq), maxWindows, r.GetValue(evalBatch), p); }
                finally { if (streamLayers) lm.MoveTo(torch.CPU); }
            });
            double loadSeconds = load.Elapsed.TotalSeconds;
            Trace("load");
            PerplexityResult? before = null;
            if (!r.GetValue(noBefore))
            {
                before = EvaluateOnDevice("perplexity before");
                Say(q, $"perplexity before: {before.Perplexity:F4}");
                Trace("eval-before");
            }

            ResolvedRecipe? resolved = null;
            if (recipe is not null)
            {
                resolved = Quantizer.Prepare(lm, recipe, config, recipePath!).Recipe;
                foreach (var w in resolved.Warnings) Console.Error.WriteLine("warning: " + w);
                config = resolved.Pipeline;
            }
            // The quantization phase's own peak RSS (the kernel's high-water mark, reset here on Linux).
            long? peakBeforeQuantize = MemoryEstimate.ProcessRss().Peak;
            MemoryEstimate.ResetPeakRss();
            using var result = CliCommon.WithProgress("quantize layers", q, p =>
                LayerwiseQuantizer.Run(lm, config, calibration, (layer, layers, phase) => { p(layer, layers); Trace($"layer {layer} {phase}"); }));
            long? quantizePeakRss = MemoryEstimate.ProcessRss().Peak;
            Trace("quantize");
            if (config.Checkpoint is { ResumedLayers: > 0 } ck)
                Say(q, $"resumed from {ck.Directory}: {ck.ResumedLayers} of {lm.Layers.Count} decoder layers were already done");
            foreach (var w in result.Warnings) Console.Error.WriteLine("warning: " + w);
            Say(q, $"quantized {result.Reports.Count} linears in {result.Seconds:F1} s " +
                   $"(mean relative error {result.Reports.Select(x => x.RelativeError).DefaultIfEmpty(0).Average():E3})");

            var after = EvaluateOnDevice("perplexity after");
            Trace("eval-after");
            Console.WriteLine(before is null
                ? $"perplexity after: {after.Perplexity:F4}"
                : $"perplexity before: {before.Perplexity:F4}  after: {after.Perplexity:F4}  ({(after.Perplexity / before.Perplexity - 1) * 100:+0.00;-0.00}%)");

            // The whole run's RSS high-water mark (the kernel's counter was reset when quantization began).
            long? processPeakRss = MemoryEstimate.ProcessRss().Peak is { } endPeak ? Math.Max(endPeak, peakBeforeQuantize ?? 0) : null;
            double writeSeconds = 0;
            if (r.GetValue(save) is { } saveDir)
            {
                var w = Stopwatch.StartNew();
                if (resolved is not null && exportFormat == ExportFormat.QuantSharp)
                    QuantSharpExporter.Write(result, saveDir, r.GetValue(overwrite), "--save", RecipeJson.ToRecipe(resolved.Root),
                        resolved.ByLinear.ToDictionary(kv => kv.Key, kv => RecipeJson.Settings(kv.Value)));
                else
                    foreach (var warning in PackedExporter.Write(result, exportFormat, saveDir, r.GetValue(overwrite), "--save"))
                        Console.Error.WriteLine("warning: " + warning);
                writeSeconds = w.Elapsed.TotalSeconds;
                Say(q, $"saved {exportName} model to {saveDir}");
            }

            if (r.GetValue(json) is { } jsonPath)
            {
                JsonOutput.Write(jsonPath, new
                {
                    config = ConfigJson(config, dir, scalar, dev),
                    recipe = resolved is null ? null : RecipeJson.ToRecipe(resolved.Root),
                    perplexity_before = before?.Perplexity,
                    perplexity_after = after.Perplexity,
                    eval = new { data = Path.GetFullPath(evalPath), seq_len = r.GetValue(evalSeq), windows = after.Windows },
                    quantize_seconds = result.Seconds,
                    phase_seconds = new Dictionary<string, double>(result.PhaseSeconds) { ["load"] = loadSeconds, ["write"] = writeSeconds },
                    total_seconds = wall.Elapsed.TotalSeconds,
                    peak_memory_bytes = Process.GetCurrentProcess().PeakWorkingSet64,
                    peak_cpu_bytes = Process.GetCurrentProcess().PeakWorkingSet64,
                    peak_gpu_bytes = result.LayerDeviceMemoryBytes.Count > 0 ? result.LayerDeviceMemoryBytes.Max() : (long?)null,
                    estimated_peak_cpu_bytes = memory.CpuBytes,
                    estimated_peak_gpu_bytes = dev.type == DeviceType.CUDA ? memory.GpuBytes : (long?)null,
                    measured_quantize_peak_cpu_bytes = quantizePeakRss,
                    measured_peak_cpu_bytes = processPeakRss,
                    memory_estimate_parts = memory.Parts,
                    layer_gpu_bytes = result.LayerDeviceMemoryBytes,
                    warnings = result.Warnings,
                    layers = result.Reports.Select(x => new { name = x.Name, relative_mse = x.RelativeError, hessian_weighted = x.HessianWeighted }),
                });
            }
            return 0;
        }));
        return cmd;
    }

    private static void Trace(string phase)
    {
        if (Environment.GetEnvironmentVariable("QUANTSHARP_TRACE_RSS") is not "1") return;
        var (rss, peak) = MemoryEstimate.ProcessRss();
        Console.Error.WriteLine($"rss {phase}: {rss / 1048576.0:F1} MiB, peak {peak / 1048576.0:F1} MiB");
    }

    private static void Say(bool quiet, string line)
    {
        if (!quiet) Console.WriteLine(line);
    }

    private static QuantFormat ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "int" => QuantFormat.Int,
        "fp" => QuantFormat.Fp,
        "mxfp" or "mxfp4" => QuantFormat.MxFp,
        "nvfp" or "nvfp4" => QuantFormat.NvFp,
        "fp8" => QuantFormat.Fp8,
        "nf4" => QuantFormat.Nf4,
        // INC's names: fp4 is bitsandbytes' table (fp4_e2m1_bnb); fp4_e2m1 is INC's own E2M1 table, not our fp.
        "fp4" or "fp4_e2m1_bnb" => QuantFormat.Fp4Bnb,
        "fp4_e2m1" => QuantFormat.Fp4E2M1Inc,
        _ => throw new QuantSharpException($"--format {s}: expected int, fp, mxfp, nvfp, fp8, nf4, fp4, fp4_e2m1 or fp4_e2m1_bnb."),
    };

    private static ObserverKind ParseObserver(string s) => s.ToLowerInvariant() switch
    {
        "minmax" => ObserverKind.MinMax,
        "mse" => ObserverKind.Mse,
        "clip" => ObserverKind.ClipSearch,
        _ => throw new QuantSharpException($"--w-observer {s}: expected minmax, mse or clip (INC's clip-ratio search, same as --use-mse-search)."),
    };

    /// <summary>
    /// The group size to use: nvfp and mxfp fix theirs (16 and 32); a different explicit value is overridden with a
    /// warning, as FP-Quant does, rather than silently. Granularity words map to -1 (channel) / 0 (tensor).
    /// </summary>
    private static int ResolveGroup(QuantFormat f, int? explicitSize, string? granularity, string prefix, int fallback)
    {
        int? fromGranularity = granularity?.ToLowerInvariant() switch
        {
            null or "group" => null,
            "channel" => QuantSpec.PerChannel,
            "tensor" => QuantSpec.PerTensor,
            var x => throw new QuantSharpException($"{prefix}granularity {x}: expected tensor, channel or group."),
        };
        int? fixedSize = QuantSpec.FixedGroupSize(f);
        int? asked = explicitSize ?? fromGranularity;
        if (fixedSize is int g)
        {
            if (asked is int a && a != g)
                Console.Error.WriteLine($"warning: {prefix}group-size {a} conflicts with format {QuantSpec.NameOf(f)}; using its fixed group size {g}.");
            return g;
        }
        return asked ?? fallback;
    }

    private static void CheckDivides(string dir, int group, string flag)
    {
        var c = ModelConfig.Load(dir);
        foreach (var (name, width) in new[] { ("hidden_size", c.HiddenSize), ("intermediate_size", c.IntermediateSize), ("num_heads·head_dim", c.NumHeads * c.HeadDim) })
        {
            if (width % group != 0)
                throw new QuantSharpException($"{flag} {group} does not divide {name} {width} of {Path.Combine(dir, "config.json")}; " +
                                              "choose a divisor, or use a rotation (--transform) whose blocks handle the tail.");
        }
    }

    private static string Describe(QuantizationConfig c)
    {
        string w = c.Weights is null ? "W16" : $"W{c.Weights.Bits} {c.Weights.FormatName} g{c.Weights.GroupSize}{(c.Weights.Symmetric ? "" : " asym")} {c.Weights.Observer.ToString().ToLowerInvariant()}";
        string a = c.Activations is null ? "A16" : $"A{c.Activations.Bits} {c.Activations.FormatName} g{c.Activations.GroupSize}";
        string m = c.Method switch
        {
            QuantMethod.Gptq => $"gptq{(c.Gptq.ActOrder ? " act-order" : "")}{(c.Gptq.StaticGroups ? " static-groups" : "")}",
            QuantMethod.Hqq => $"hqq{(c.Hqq.QuantZero ? " quant-zero" : "")}{(c.Hqq.QuantScale ? " quant-scale" : "")}",
            _ when c.IsBlockMethod => BlockMethodOptions.Describe(c),
            var x => x.ToString().ToLowerInvariant(),
        };
        if (c.Weights is { } ws)
            m += (ws.FullRange ? " full-range" : "") + (ws.Fp8Aware ? $" fp8-aware {E4M3Variants.Name(ws.Fp8Variant)}" : "") + (ws.GroupDim == 0 ? " group-dim 0" : "") +
                 (ws.DoubleQuant is { } dq ? $" double-quant {dq.Bits}-bit{(dq.Symmetric ? " sym" : "")} g{dq.GroupSize}" : "");
        string t = c.Transform == TransformKind.Identity ? "no rotation" : $"{c.Transform.Name()} {c.TransformGroupSize}";
        string kv = c.KvCache is { } k ? $", KV cache K{k.KBits}V{k.VBits} g{k.GroupSize}{(k.Asymmetric ? " asym" : "")}" : "";
        return $"{w}, {a}, {m}, {t}{kv}" + (c.NeedsCalibration ? $", calibration {c.NumSequences}×{c.SeqLen} seed {c.Seed}" : "");
    }

    private static object ConfigJson(QuantizationConfig c, string dir, torch.ScalarType dtype, torch.Device dev) => new
    {
        model = Path.GetFullPath(dir),
        method = c.Method.ToString().ToLowerInvariant(),
        format = c.Weights?.FormatName ?? c.Activations?.FormatName,
        w_bits = c.Weights?.Bits ?? 16,
        a_bits = c.Activations?.Bits ?? 16,
        w_group_size = c.Weights?.GroupSize,
        a_group_size = c.Activations?.GroupSize,
        symmetric = c.Weights?.Symmetric ?? true,
        w_observer = c.Weights?.Observer.ToString().ToLowerInvariant(),
        mx_scale_rule = c.Weights?.MxRule.ToString().ToLowerInvariant(),
        transform = c.Transform.Name(),
        transform_group_size = c.TransformGroupSize,
        act_order = c.Gptq.ActOrder,
        static_groups = c.Gptq.StaticGroups,
        rel_damp = c.Gptq.RelDamp,
        gptq_block_size = c.Gptq.BlockSize,
        full_range = c.Weights?.FullRange,
        fp8_aware = c.Weights?.Fp8Aware,
        fp8_variant = c.Weights is { } fw && (fw.Fp8Aware || fw.Format == QuantFormat.Fp8) ? E4M3Variants.Name(fw.Fp8Variant) : null,
        int_sym_rule = c.Weights?.SymmetricRule.ToString().ToLowerInvariant(),
        group_dim = c.Weights?.GroupDim,
        double_quant = c.Weights?.DoubleQuant is { } dq ? new { bits = dq.Bits, symmetric = dq.Symmetric, group_size = dq.GroupSize } : null,
        hqq = c.Method == QuantMethod.Hqq ? new { quant_zero = c.Hqq.QuantZero, quant_scale = c.Hqq.QuantScale, scale_quant_group_size = c.Hqq.ScaleQuantGroupSize, iterations = c.Hqq.Iterations } : null,
        fuse_global_scale = c.FuseGlobalScale,
        k_bits = c.KvCache?.KBits ?? 16,
        v_bits = c.KvCache?.VBits ?? 16,
        kv_group_size = c.KvCache?.GroupSize,
        kv_asym = c.KvCache?.Asymmetric,
        num_sequences = c.NumSequences,
        seq_len = c.SeqLen,
        seed = c.Seed,
        dtype = dtype.ToString(),
        device = dev.ToString(),
    };
}

/// <summary>The embedded default model and data, shipped in testdata/ so a fresh clone runs with no downloads.</summary>
internal static class EmbeddedDefaults
{
    public static string Model() => Find(Path.Combine("testdata", "models", "micro-qwen3"));
    public static string EvalText() => Find(Path.Combine("testdata", "data", "eval_a.txt"));
    public static string CalibText() => Find(Path.Combine("testdata", "data", "calib.txt"));

    private static string Find(string relative)
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (string? d = start; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, relative);
                if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
            }
        }
        throw new QuantSharpException($"embedded default '{relative}' not found above {Environment.CurrentDirectory}; pass --model/--calib/--eval explicitly.");
    }
}
