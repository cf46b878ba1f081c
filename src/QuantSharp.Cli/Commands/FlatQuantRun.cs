using System.CommandLine;
using System.Diagnostics;
using QuantSharp.Algorithms.FlatQuant;
using QuantSharp.Backend;
using QuantSharp.Calibration;
using QuantSharp.Eval;
using QuantSharp.Export;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using QuantSharp.Quantization;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// <c>quantize --method flatquant</c>: calibrates FlatQuant layer by layer (one progress line per layer and epoch with
/// the loss), reports perplexity before/after and saves either the fake-quantized model's int4 export
/// (<c>--export flatquant-int4</c>) or nothing. The option objects come from <see cref="QuantizeCommand"/>.
/// </summary>
internal static class FlatQuantRun
{
    /// <summary>The flags quantize shares with this run, by role.</summary>
    internal sealed record Flags(
        Option<string?> Model, Option<int?> WBits, Option<int?> ABits, Option<int?> KBits, Option<int?> VBits, Option<bool> KvAsym,
        Option<int?> KvGroup, Option<int?> Epochs, Option<double?> Lr, Option<bool> Lwc, Option<bool> Lac, Option<bool> AddDiag,
        Option<bool> ActAsym, Option<bool> Gptq, Option<double?> RelDamp, Option<string?> Resume, Option<string?> Calib,
        Option<int?> NumSeq, Option<int?> SeqLen, Option<int> Seed, Option<int> CalibBatch, Option<string?> Eval, Option<int> EvalSeq,
        Option<int?> EvalMax, Option<int> EvalBatch, Option<bool> SkipBaseline, Option<string?> Save, Option<string?> Export,
        Option<bool> Overwrite, Option<string?> Json, Option<string> DType, Option<string> Device, Option<bool> Quiet,
        Option<bool> DirectInv);

    public static int Execute(ParseResult r, Flags f)
    {
        var wall = Stopwatch.StartNew();
        string dir = CliCommon.RequireModelDir(r.GetValue(f.Model) ?? EmbeddedDefaults.Model());
        var modelConfig = ModelConfig.Load(dir);
        int wb = r.GetValue(f.WBits) ?? 4, ab = r.GetValue(f.ABits) ?? 4, kb = r.GetValue(f.KBits) ?? 16, vb = r.GetValue(f.VBits) ?? 16;
        var options = new FlatQuantOptions
        {
            WBits = wb,
            ABits = ab,
            ActAsymmetric = r.GetValue(f.ActAsym),
            KvCache = kb < 16 || vb < 16 ? new KvCacheSpec(kb, vb, r.GetValue(f.KvGroup) ?? 128, r.GetValue(f.KvAsym)) : null,
            Epochs = r.GetValue(f.Epochs) ?? 15,
            LearningRate = r.GetValue(f.Lr) ?? 5e-3,
            Lwc = r.GetValue(f.Lwc),
            Lac = r.GetValue(f.Lac),
            AddDiag = r.GetValue(f.AddDiag),
            BatchSize = r.GetResult(f.CalibBatch) is { Implicit: false } ? r.GetValue(f.CalibBatch) : 4,
            NumSequences = r.GetValue(f.NumSeq) ?? 128,
            SeqLen = r.GetValue(f.SeqLen) ?? 512,
            Seed = r.GetValue(f.Seed),
            Gptq = r.GetValue(f.Gptq),
            GptqOptions = new Algorithms.Gptq.GptqOptions { RelDamp = r.GetValue(f.RelDamp) ?? 0.01 },
            ResumeDir = r.GetValue(f.Resume),
            Parameterization = r.GetValue(f.DirectInv) ? TransformParameterization.DirectInverse : TransformParameterization.Svd,
        };
        options.Validate(modelConfig);
        // --export defaults to pseudoquant for the other methods; FlatQuant has one layout, so an unset flag means it.
        string exportName = r.GetResult(f.Export) is { Implicit: false } ? r.GetValue(f.Export)! : FlatQuantInt4Exporter.FormatName;
        if (r.GetValue(f.Save) is not null && exportName != FlatQuantInt4Exporter.FormatName)
            throw new QuantSharpException($"--method flatquant saves with --export {FlatQuantInt4Exporter.FormatName} (got --export {exportName}).");
        if (r.GetValue(f.Save) is not null && wb != 4)
            throw new QuantSharpException($"--export {FlatQuantInt4Exporter.FormatName} packs 4-bit weights; --w-bits is {wb}.");

        var dev = TorchRuntime.ResolveDevice(r.GetValue(f.Device));
        string dt = r.GetValue(f.DType)!;
        // Calibration trains in float32 whatever the model dtype; the model itself follows --dtype.
        var scalar = dt == "auto" ? (dev.type == DeviceType.CUDA ? torch.bfloat16 : torch.float32) : CliCommon.ParseDType(dt);
        bool q = r.GetValue(f.Quiet);
        void Say(string line) { if (!q) Console.WriteLine(line); }
        Say($"model {Path.GetFullPath(dir)}  ({scalar} on {dev})");
        Say($"recipe flatquant W{wb}A{ab}K{kb}V{vb} (kv group {options.KvCache?.GroupSize ?? 128}{(options.KvCache?.Asymmetric == true ? " asym" : "")}), " +
            $"{options.Epochs} epochs lr {options.LearningRate:G3}{(options.Lwc ? " lwc" : "")}{(options.Lac ? " lac" : "")}{(options.AddDiag ? " add-diag" : "")}" +
            $", {(options.Gptq ? "gptq" : "rtn")} weights, calibration {options.NumSequences}×{options.SeqLen} batch {options.BatchSize} seed {options.Seed}");

        var tokenizer = BpeTokenizer.FromDirectory(dir);
        string evalPath = CliCommon.RequireFile(r.GetValue(f.Eval) ?? EmbeddedDefaults.EvalText(), "--eval");
        int[] evalIds = tokenizer.Encode(File.ReadAllText(evalPath));
        int? maxWindows = r.GetValue(f.EvalMax);
        string calibPath = CliCommon.RequireFile(r.GetValue(f.Calib) ?? EmbeddedDefaults.CalibText(), "--calib");
        int[][] calibration = CalibrationData.Load(calibPath, tokenizer, options.NumSequences, options.SeqLen, options.Seed);

        using var lm = CausalLM.Load(dir, scalar, dev);
        PerplexityResult Evaluate(string label) => CliCommon.WithProgress(label, q, p =>
            PerplexityEvaluator.Evaluate(lm, evalIds, r.GetValue(f.EvalSeq), maxWindows, r.GetValue(f.EvalBatch), p));
        PerplexityResult? before = null;
        if (!r.GetValue(f.SkipBaseline))
        {
            before = Evaluate("perplexity before");
            Say($"perplexity before: {before.Perplexity:F4}");
        }

        using var result = FlatQuantCalibrator.Run(lm, options, calibration, line => { if (!q) Console.Error.WriteLine(line); });
        Say($"calibrated {result.Reports.Count} layers in {result.Seconds:F1} s");
        var after = Evaluate("perplexity after");
        Console.WriteLine(before is null
            ? $"perplexity after: {after.Perplexity:F4}"
            : $"perplexity before: {before.Perplexity:F4}  after: {after.Perplexity:F4}  ({(after.Perplexity / before.Perplexity - 1) * 100:+0.00;-0.00}%)");

        if (r.GetValue(f.Save) is { } saveDir)
        {
            FlatQuantInt4Exporter.Write(result, saveDir, r.GetValue(f.Overwrite));
            Say($"saved {FlatQuantInt4Exporter.FormatName} model to {saveDir}");
        }
        if (r.GetValue(f.Json) is { } jsonPath)
        {
            JsonOutput.Write(jsonPath, new
            {
                config = new
                {
                    model = Path.GetFullPath(dir), method = "flatquant", w_bits = wb, a_bits = ab, k_bits = kb, v_bits = vb,
                    kv_group_size = options.KvCache?.GroupSize, kv_asym = options.KvCache?.Asymmetric, epochs = options.Epochs,
                    lr = options.LearningRate, lwc = options.Lwc, lac = options.Lac, add_diag = options.AddDiag, gptq = options.Gptq,
                    num_sequences = options.NumSequences, seq_len = options.SeqLen, batch_size = options.BatchSize, seed = options.Seed,
                    dtype = scalar.ToString(), device = dev.ToString(),
                },
                perplexity_before = before?.Perplexity,
                perplexity_after = after.Perplexity,
                eval = new { data = Path.GetFullPath(evalPath), seq_len = r.GetValue(f.EvalSeq), windows = after.Windows },
                quantize_seconds = result.Seconds,
                total_seconds = wall.Elapsed.TotalSeconds,
                peak_memory_bytes = Process.GetCurrentProcess().PeakWorkingSet64,
                layers = result.Reports.Select(x => new { layer = x.Layer, first_loss = x.FirstLoss, last_loss = x.LastLoss, resumed = x.Resumed, seconds = x.Seconds }),
            });
        }
        return 0;
    }
}
