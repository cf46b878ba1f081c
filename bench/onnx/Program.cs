// Exports each fixture model in several MatMulNBits layouts, runs every file in ONNX Runtime (CPU) and compares its
// perplexity with QuantSharp's own fp32 forward of the same quantized weights (OnnxExporter.ApplyQuantization).
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using QuantSharp.Eval;
using QuantSharp.Export.Onnx;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using static TorchSharp.torch;

string root = args.Length > 0 ? args[0] : Directory.GetCurrentDirectory();
int windows = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 16;
int seqLen = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 512;
string shared = Environment.GetEnvironmentVariable("QUANTSHARP_SHARED") is { Length: > 0 } env ? env : Path.GetFullPath(Path.Combine(root, "..", "shared"));
string evalText = File.Exists(Path.Combine(shared, "data", "eval_a.txt")) ? Path.Combine(shared, "data", "eval_a.txt") : Path.Combine(root, "testdata", "data", "eval_a.txt");
set_num_threads(2);

OnnxExportOptions[] formats =
[
    new(Float: true),
    new(4, 32, Symmetric: true), new(4, 32, Symmetric: false),
    new(4, 128, Symmetric: true), new(4, 128, Symmetric: false),
    new(8, 128, Symmetric: true), new(8, 32, Symmetric: false),
];
(string Name, string Dir)[] models =
[
    ("micro-qwen3", Path.Combine(root, "testdata", "models", "micro-qwen3")),
    ("tiny-llama", Path.Combine(shared, "models", "tiny-llama")),
    ("tiny-qwen3", Path.Combine(shared, "models", "tiny-qwen3")),
];

var rows = new List<Dictionary<string, object?>>();
var skipped = new List<string>();
string work = Path.Combine(Path.GetTempPath(), "quantsharp-onnx-bench-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
Directory.CreateDirectory(work);
try
{
    foreach (var (name, dir) in models)
    {
        if (!File.Exists(Path.Combine(dir, "config.json")))
        {
            skipped.Add($"{name}: not found at {dir}");
            Console.WriteLine($"skip {name}: not found at {dir}");
            continue;
        }
        int[] ids = BpeTokenizer.FromDirectory(dir).Encode(File.ReadAllText(evalText));
        foreach (var options in formats)
        {
            var watch = Stopwatch.StartNew();
            string path = Path.Combine(work, $"{name}-{options.Label}.onnx");
            OnnxExportReport report;
            using (var source = CausalLM.Load(dir, float32, CPU)) report = OnnxExporter.Export(source, path, options);
            double ours;
            float[] ourWindow0;
            using (var model = CausalLM.Load(dir, float32, CPU))
            {
                OnnxExporter.ApplyQuantization(model, options);
                ours = PerplexityEvaluator.Evaluate(model, ids, seqLen, windows).Perplexity;
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var first = tensor(ids.Take(seqLen).Select(i => (long)i).ToArray(), [1, seqLen], int64);
                ourWindow0 = model.Forward(first, null).contiguous().data<float>().ToArray();
            }
            var (ort, maxDiff) = OrtPerplexity(path, ids, seqLen, windows, dir, ourWindow0);
            File.Delete(path);
            double delta = (ort / ours - 1) * 100;
            Console.WriteLine($"{name} {options.Label}: ours {ours:F4} ORT {ort:F4} Δ {delta:+0.000;-0.000}% max|Δlogit| {maxDiff:E2} " +
                              $"{report.FileBytes:N0} B {report.LinearBitsPerWeight:F3} b/w ({watch.Elapsed.TotalSeconds:F0} s)");
            rows.Add(new()
            {
                ["model"] = name, ["format"] = options.Label, ["bits"] = options.Float ? 32 : options.Bits,
                ["block_size"] = options.Float ? null : options.BlockSize, ["symmetric"] = options.Float ? null : options.Symmetric,
                ["quantsharp_ppl"] = ours, ["ort_ppl"] = ort, ["delta_percent"] = delta, ["max_abs_logit_diff_window0"] = maxDiff,
                ["file_bytes"] = report.FileBytes, ["linear_bits_per_weight"] = report.LinearBitsPerWeight,
                ["file_bits_per_weight"] = report.FileBitsPerWeight, ["nodes"] = report.Nodes,
            });
        }
    }
}
finally
{
    Directory.Delete(work, recursive: true);
}

string machine = $"{Environment.MachineName}, {Environment.ProcessorCount} logical CPUs visible, {Environment.OSVersion}";
string date = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
string ortVersion = typeof(InferenceSession).Assembly.GetName().Version?.ToString() ?? "?";
string protocol = $"eval_a.txt tokenized by each model's tokenizer (no BOS), the first {windows} non-overlapping windows of {seqLen} " +
                  "tokens (not the whole file), mean NLL of tokens 2..n; both sides fp32 on CPU.";
string resultsDir = Path.Combine(root, "bench", "results");
Directory.CreateDirectory(resultsDir);
File.WriteAllText(Path.Combine(resultsDir, "onnx-ort.json"), JsonSerializer.Serialize(new
{
    machine, date, onnxruntime = ortVersion, protocol, windows, seq_len = seqLen, skipped, rows,
}, new JsonSerializerOptions { WriteIndented = true }));

var md = new StringBuilder();
md.AppendLine("# ONNX export (com.microsoft.MatMulNBits) vs real ONNX Runtime").AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine}. Date: {date}. ONNX Runtime: Microsoft.ML.OnnxRuntime {ortVersion} (NuGet 1.31.1), CPU EP, 2 intra-op threads.").AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"Protocol: {protocol}").AppendLine();
md.AppendLine("QuantSharp: the model with every decoder linear replaced by the quantize→dequantize of the same IntWeightQuantizer " +
              "parameters the file stores (`OnnxExporter.ApplyQuantization`). ORT: the `.onnx` file written by `quantsharp export-onnx`. " +
              "\"Δ\" is ORT relative to QuantSharp; \"max |Δ logit|\" is over the first window. Linear bits/weight = (packed codes + " +
              "float32 scales + packed zero points) per decoder-linear weight; file bits/weight = file bits over all parameters " +
              "(float32 embeddings, norms and lm_head included, tied tables stored once; the file also holds the float32 RoPE cos/sin tables for every position, which are not parameters, hence 32+ for float).").AppendLine();
md.AppendLine("| model | format | QuantSharp ppl | ORT ppl | Δ % | max \\|Δ logit\\| | file bytes | linear bits/weight | file bits/weight |");
md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
foreach (var r in rows)
    md.AppendLine(CultureInfo.InvariantCulture,
        $"| {r["model"]} | {r["format"]} | {r["quantsharp_ppl"]:F4} | {r["ort_ppl"]:F4} | {(double)r["delta_percent"]!:+0.000;-0.000} | {(double)r["max_abs_logit_diff_window0"]!:E2} | {r["file_bytes"]:N0} | {(double)r["linear_bits_per_weight"]!:F3} | {(double)r["file_bits_per_weight"]!:F3} |");
if (rows.Count > 0)
    md.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"Largest |Δ|: {rows.Max(r => Math.Abs((double)r["delta_percent"]!)):F4} % (target: within 0.3 %).");
foreach (string s in skipped) md.AppendLine().AppendLine("Skipped: " + s);
md.AppendLine().AppendLine($"Reproduce: `bench/onnx/run.sh {windows} {seqLen}`.");
File.WriteAllText(Path.Combine(resultsDir, "onnx-ort.md"), md.ToString());
Console.WriteLine("wrote bench/results/onnx-ort.{json,md}");
return 0;

static (double Ppl, double MaxDiffWindow0) OrtPerplexity(string path, int[] ids, int seqLen, int windows, string modelDir, float[] ourWindow0)
{
    using var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
    using var session = new InferenceSession(path, options);
    int vocab = ModelConfig.Load(modelDir).VocabSize;
    int n = Math.Min(windows, ids.Length / seqLen);
    double total = 0, maxDiff = 0;
    for (int w = 0; w < n; w++)
    {
        long[] window = ids.AsSpan(w * seqLen, seqLen).ToArray().Select(i => (long)i).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(window, [1, seqLen]);
        using var run = new RunOptions();
        using var outputs = session.Run(run, ["input_ids"], [input], ["logits"]);
        var logits = outputs[0].GetTensorDataAsSpan<float>();
        for (int t = 0; t < seqLen - 1; t++)
        {
            var row = logits.Slice(t * vocab, vocab);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row) max = Math.Max(max, v);
            foreach (float v in row) sum += Math.Exp(v - max);
            total += max + Math.Log(sum) - row[(int)window[t + 1]];
        }
        if (w == 0)
            for (int i = 0; i < logits.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(logits[i] - ourWindow0[i]));
    }
    return (Math.Exp(total / (n * (seqLen - 1.0))), maxDiff);
}
