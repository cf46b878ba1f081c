using System.CommandLine;
using QuantSharp.Backend;
using QuantSharp.Eval;
using QuantSharp.Models;
using QuantSharp.Quantizers;

namespace QuantSharp.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var seqLen = new Option<int>("--seq-len") { DefaultValueFactory = _ => 2048 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 1 };
        var decode = new Option<int>("--decode-tokens") { DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { DefaultValueFactory = _ => 5 };
        var dtype = CliCommon.DTypeOption("bf16");
        var device = CliCommon.DeviceOption();
        var json = new Option<string?>("--json");
        var forward = new Command("forward", "Prefill and batch-1 decode throughput of a model.")
        {
            model, seqLen, batch, decode, repeats, dtype, device, json,
        };
        forward.SetAction(r => CliCommon.Run(() =>
        {
            string dir = CliCommon.RequireModelDir(r.GetValue(model)!);
            var dev = TorchRuntime.ResolveDevice(r.GetValue(device));
            var load = System.Diagnostics.Stopwatch.StartNew();
            using var lm = CausalLM.Load(dir, CliCommon.ParseDType(r.GetValue(dtype)!), dev);
            double loadSeconds = load.Elapsed.TotalSeconds;
            var res = ForwardBenchmark.Run(lm, r.GetValue(seqLen), r.GetValue(batch), r.GetValue(decode), r.GetValue(repeats));
            Console.WriteLine($"load {loadSeconds:F2} s; prefill {res.Batch}×{res.SeqLen}: {res.PrefillSeconds * 1000:F2} ms " +
                              $"({res.PrefillTokensPerSecond:F0} tokens/s); decode: {res.DecodeTokensPerSecond:F1} tokens/s");
            if (r.GetValue(json) is { } path)
                JsonOutput.Write(path, new
                {
                    model = Path.GetFullPath(dir), device = dev.ToString(), dtype = r.GetValue(dtype), load_seconds = loadSeconds,
                    seq_len = res.SeqLen, batch = res.Batch, prefill_seconds = res.PrefillSeconds,
                    prefill_tokens_per_second = res.PrefillTokensPerSecond, decode_tokens = res.DecodeTokens,
                    decode_tokens_per_second = res.DecodeTokensPerSecond,
                });
            return 0;
        }));
        var rows = new Option<int>("--rows") { DefaultValueFactory = _ => 4096 };
        var cols = new Option<int>("--columns") { DefaultValueFactory = _ => 4096 };
        var format = new Option<string>("--format") { DefaultValueFactory = _ => "nvfp" };
        var gptqDevice = CliCommon.DeviceOption();
        var gptq = new Command("gptq", "One GPTQ solve with and without the fused CUDA block kernel: seconds and agreement.")
        {
            rows, cols, format, gptqDevice, json,
        };
        gptq.SetAction(r => CliCommon.Run(() =>
        {
            var dev = TorchRuntime.ResolveDevice(r.GetValue(gptqDevice));
            var spec = r.GetValue(format) switch
            {
                "nvfp" => QuantSpec.NvFp4(),
                "int4" => QuantSpec.Int(4, 128),
                var f => throw new QuantSharpException($"--format {f}: expected nvfp or int4."),
            };
            var res = GptqBenchmark.Run(r.GetValue(rows), r.GetValue(cols), spec, actOrder: true, dev);
            Console.WriteLine($"gptq {res.Rows}x{res.Columns} {res.Format}: kernel {(res.KernelUsed ? "on" : "off")} {res.KernelSeconds:F3} s, " +
                              $"tensor ops {res.TensorOpSeconds:F3} s; max |diff| {res.MaxAbsDifference:E2}, differing {res.DifferingFraction:P4}, " +
                              $"rel. error {res.KernelRelativeError:E4} vs {res.TensorOpRelativeError:E4}" +
                              (res.KernelUsed ? "" : $" ({res.KernelUnavailableReason})"));
            if (r.GetValue(json) is { } path) JsonOutput.Write(path, res);
            return 0;
        }));
        var cases = new Option<int>("--cases") { Description = "mutated files per parser", DefaultValueFactory = _ => 2000 };
        var fuzzSeed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var fuzzModel = new Option<string?>("--model") { Description = "model folder whose config.json and tokenizer.json seed the JSON cases (default: testdata/models/micro-qwen3)" };
        var fuzzOut = new Option<string?>("--markdown") { Description = "append a results table to this Markdown file" };
        var fuzz = new Command("fuzz", "Seeded mutational fuzzing of the safetensors, GGUF, tokenizer.json and config.json parsers.")
        {
            cases, fuzzSeed, fuzzModel, fuzzOut, json,
        };
        fuzz.SetAction(r => CliCommon.Run(() => FuzzBench.Run(r.GetValue(cases), r.GetValue(fuzzSeed),
            CliCommon.RequireModelDir(r.GetValue(fuzzModel) ?? EmbeddedDefaults.Model()), r.GetValue(fuzzOut), r.GetValue(json))));
        return new Command("bench", "Benchmarks.") { forward, gptq, fuzz };
    }
}
