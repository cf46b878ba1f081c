using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using QuantSharp.Backend;
using QuantSharp.Eval;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using QuantSharp.Quantization;

namespace QuantSharp.Cli.Commands;

internal static class EvalCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var data = new Option<string?>("--data") { Description = "text file to score (perplexity mode; or use --tasks)" };
        var seqLen = new Option<int>("--seq-len") { Description = "window length in tokens", DefaultValueFactory = _ => 512 };
        var maxWindows = new Option<int?>("--max-windows") { Description = "score only the first K windows" };
        var batch = new Option<int>("--batch-size") { Description = "windows per forward pass", DefaultValueFactory = _ => 4 };
        var dtype = CliCommon.DTypeOption();
        var device = CliCommon.DeviceOption();
        var json = new Option<string?>("--json") { Description = "write {perplexity, windows, tokens, seconds} here" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress output" };

        var tasks = TaskEvalOptions.Create();

        var cmd = new Command("eval", "Perplexity of a model on a text file (non-overlapping windows, no BOS), or accuracy on tasks (--tasks).")
        {
            model, data, seqLen, maxWindows, batch, dtype, device, json, quiet,
        };
        tasks.AddTo(cmd);
        var fp8Load = new Fp8LoadOptions();
        fp8Load.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            if (r.GetValue(tasks.Tasks) is { } taskList)
            {
                if (r.GetValue(data) is not null) throw new QuantSharpException("--data and --tasks: give one (perplexity of a file, or task accuracy).");
                if (fp8Load.AnySet(r)) throw new QuantSharpException("--quantize-on-load/--w4a8 apply to perplexity (--data), not yet to --tasks.");
                return TaskEvalOptions.Run(r, tasks, r.GetValue(model)!, r.GetValue(dtype)!, r.GetValue(device)!, r.GetValue(json), r.GetValue(quiet));
            }
            var total = Stopwatch.StartNew();
            string dir = ModelInput.Require(r.GetValue(model)!);
            string dataPath = CliCommon.RequireFile(r.GetValue(data) ?? throw new QuantSharpException("eval needs --data FILE (perplexity) or --tasks NAMES."), "--data");
            var dev = TorchRuntime.ResolveDevice(r.GetValue(device));
            var dt = CliCommon.ParseDType(r.GetValue(dtype)!);

            var tokenizer = ModelInput.Tokenizer(dir);
            int[] ids = tokenizer.Encode(File.ReadAllText(dataPath));
            bool q = r.GetValue(quiet);
            using var loaded = fp8Load.Load(r, dir, dt, dev, q);
            var lm = loaded.Model;
            var result = CliCommon.WithProgress("perplexity", q, p =>
                PerplexityEvaluator.Evaluate(lm, ids, r.GetValue(seqLen), r.GetValue(maxWindows), r.GetValue(batch), p));

            Console.WriteLine($"perplexity {result.Perplexity:F4}  ({result.Windows} windows × {r.GetValue(seqLen)} tokens, " +
                              $"{result.Seconds:F1} s scoring, {total.Elapsed.TotalSeconds:F1} s total, {dt} on {dev})");
            if (r.GetValue(json) is { } jsonPath)
            {
                var payload = new
                {
                    perplexity = result.Perplexity,
                    windows = result.Windows,
                    tokens = result.Tokens,
                    seconds = total.Elapsed.TotalSeconds,
                    scoring_seconds = result.Seconds,
                    model = Path.GetFullPath(dir),
                    data = Path.GetFullPath(dataPath),
                    seq_len = r.GetValue(seqLen),
                    dtype = r.GetValue(dtype),
                    device = dev.ToString(),
                };
                JsonOutput.Write(jsonPath, payload);
            }
            return 0;
        }));
        return cmd;
    }
}

internal static class JsonOutput
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    /// <summary>Writes JSON atomically (temp file then rename), so a reader never sees half a file.</summary>
    public static void Write(string path, object payload)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(payload, Options));
        File.Move(tmp, full, overwrite: true);
    }
}
