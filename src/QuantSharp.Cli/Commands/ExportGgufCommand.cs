using System.CommandLine;
using System.Diagnostics;
using QuantSharp.Calibration;
using QuantSharp.Export.Gguf;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// <c>quantsharp export-gguf</c>: writes a model folder as a GGUF file for llama.cpp, optionally quantizing with an
/// importance matrix gathered from a calibration text. A verb of its own (not a subcommand of a shared "export") so
/// other export formats can be added without touching this file.
/// </summary>
internal static class ExportGgufCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var to = new Option<string>("--to") { Description = "output format (only gguf here)", DefaultValueFactory = _ => "gguf" };
        var type = new Option<string>("--gguf-type")
        {
            Description = "f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q4_k | iq4_nl | mxfp4 (2-D weights; norms stay f32)",
            DefaultValueFactory = _ => "q4_k",
        };
        var calib = new Option<string?>("--imatrix-calib") { Description = "calibration text for an importance matrix (Σx² per input column)" };
        var sequences = new Option<int>("--imatrix-sequences") { Description = "calibration windows", DefaultValueFactory = _ => 64 };
        var seqLen = new Option<int>("--imatrix-seq-len") { Description = "tokens per calibration window", DefaultValueFactory = _ => 512 };
        var seed = new Option<int>("--seed") { Description = "seed of the calibration window draw", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "the .gguf file to write", Required = true };
        var json = new Option<string?>("--json") { Description = "write {file, type, bytes, bits_per_weight, tensor types} here" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress output" };

        var cmd = new Command("export-gguf", "Write a model as a GGUF file llama.cpp can run (F16/BF16/Q8_0/Q4_0/Q4_1/Q4_K/IQ4_NL/MXFP4).")
        {
            model, to, type, calib, sequences, seqLen, seed, output, json, quiet,
        };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var watch = Stopwatch.StartNew();
            if (!string.Equals(r.GetValue(to), "gguf", StringComparison.OrdinalIgnoreCase))
                throw new QuantSharpException($"--to {r.GetValue(to)}: this command writes gguf only.");
            string dir = CliCommon.RequireModelDir(r.GetValue(model)!);
            var ggufType = GgufTypes.Parse(r.GetValue(type)!);
            string outPath = r.GetValue(output)!;
            string? outDir = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (outDir is not null && !Directory.Exists(outDir)) throw new QuantSharpException($"--out {outPath}: folder {outDir} does not exist.");
            string? calibPath = r.GetValue(calib) is { } c ? CliCommon.RequireFile(c, "--imatrix-calib") : null;
            bool q = r.GetValue(quiet);

            using var lm = CausalLM.Load(dir, torch.float32, torch.CPU);
            ImportanceMatrix? imatrix = null;
            if (calibPath is not null)
            {
                if (!GgufTypes.UsesImportance(ggufType))
                    Console.Error.WriteLine($"note: {GgufTypes.Name(ggufType)} ignores the importance matrix (as in llama.cpp); writing without it.");
                else
                {
                    var tokenizer = BpeTokenizer.FromDirectory(dir);
                    var windows = CalibrationData.Load(calibPath, tokenizer, r.GetValue(sequences), r.GetValue(seqLen), r.GetValue(seed));
                    imatrix = CliCommon.WithProgress("imatrix", q, p => ImportanceMatrix.Collect(lm, windows, p));
                }
            }
            var report = GgufExporter.Write(lm, outPath, ggufType, imatrix, dir);
            string types = string.Join(", ", report.TypeCounts.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value}×{kv.Key}"));
            Console.WriteLine($"wrote {outPath}: {GgufTypes.Name(ggufType)}{(report.UsedImportance ? " + imatrix" : "")}, " +
                              $"{report.FileBytes:N0} bytes, {report.BitsPerWeight:F3} bits/weight, tensors {types} ({watch.Elapsed.TotalSeconds:F1} s)");
            if (r.GetValue(json) is { } jsonPath)
            {
                JsonOutput.Write(jsonPath, new
                {
                    file = Path.GetFullPath(outPath),
                    model = Path.GetFullPath(dir),
                    type = GgufTypes.Name(ggufType),
                    imatrix = report.UsedImportance,
                    imatrix_tokens = imatrix?.Tokens ?? 0,
                    bytes = report.FileBytes,
                    parameters = report.Parameters,
                    bits_per_weight = report.BitsPerWeight,
                    tensor_types = report.TypeCounts.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value),
                    seconds = watch.Elapsed.TotalSeconds,
                });
            }
            return 0;
        }));
        return cmd;
    }
}
