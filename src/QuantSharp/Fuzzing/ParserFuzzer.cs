using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using QuantSharp.Export.Gguf;
using QuantSharp.IO;
using QuantSharp.IO.Gguf;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Fuzzing;

/// <summary>The parsers under test.</summary>
public enum FuzzTarget { Safetensors, Gguf, TokenizerJson, ConfigJson }

/// <summary>A case that broke a rule: an exception type other than ours, a hang, or an allocation out of proportion.</summary>
public sealed record FuzzFinding(FuzzTarget Target, int Case, string Kind, string Detail);

/// <summary>Counts for one target: accepted (parsed fine), rejected (our documented exception), and the findings.</summary>
public sealed record FuzzTargetReport(FuzzTarget Target, int Cases, int Accepted, int Rejected, IReadOnlyList<FuzzFinding> Findings, double Seconds);

/// <summary>
/// Seeded mutational fuzzing of the four parsers that read untrusted files: the safetensors reader (header and every
/// tensor read), the GGUF reader (header, metadata, every tensor's bytes), the tokenizer.json loader (load, then encode
/// a sentence) and config.json parsing. Each case mutates a valid seed file (bytes, or JSON structure for the JSON
/// formats), writes it and runs the parser. The rules: the only exception a parser may throw is
/// <see cref="QuantSharpException"/> (with <see cref="InvalidFileException"/>); no case may run past a time limit; no case
/// may allocate far more managed memory than its input could justify (a reader that trusts a claimed length). Case i of
/// a seed is reproducible: its random stream is seeded with (seed, target, i).
/// </summary>
public sealed class ParserFuzzer
{
    /// <summary>A case allocating more than this plus <see cref="AllocationPerInputByte"/>·input is a finding.</summary>
    public const long AllocationAllowanceBytes = 64L << 20;
    public const long AllocationPerInputByte = 64;

    private readonly Dictionary<FuzzTarget, byte[]> _seeds;
    private readonly string _workDir;

    public ParserFuzzer(string workDir, string modelDir)
    {
        _workDir = workDir;
        Directory.CreateDirectory(workDir);
        _seeds = new()
        {
            [FuzzTarget.Safetensors] = SafetensorsSeed(workDir),
            [FuzzTarget.Gguf] = GgufSeed(workDir),
            [FuzzTarget.TokenizerJson] = TokenizerSeed(Path.Combine(modelDir, "tokenizer.json")),
            [FuzzTarget.ConfigJson] = File.ReadAllBytes(Path.Combine(modelDir, "config.json")),
        };
        // Every seed must parse: otherwise the fuzzer would only ever test the rejection of its own seed.
        foreach (var (target, bytes) in _seeds) Parse(target, WriteCase(target, bytes));
    }

    public TimeSpan CaseTimeout { get; init; } = TimeSpan.FromSeconds(20);

    public FuzzTargetReport Run(FuzzTarget target, int cases, int seed)
    {
        var clock = Stopwatch.StartNew();
        var findings = new List<FuzzFinding>();
        int accepted = 0, rejected = 0;
        for (int i = 0; i < cases; i++)
        {
            var rng = new Random(HashCode.Combine(seed, (int)target, i) & int.MaxValue);
            byte[] input = target is FuzzTarget.TokenizerJson or FuzzTarget.ConfigJson
                ? JsonMutator.Mutate(_seeds[target], rng) : ByteMutator.Mutate(_seeds[target], rng);
            string path = WriteCase(target, input);
            long allocated = 0;
            Exception? error = null;
            var task = Task.Run(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try { Parse(target, path); }
                catch (Exception e) { error = e; }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            });
            if (!task.Wait(CaseTimeout))
            {
                findings.Add(new(target, i, "hang", $"no result after {CaseTimeout.TotalSeconds:F0} s"));
                break; // the thread cannot be stopped; later cases would share the machine with it
            }
            if (error is null) accepted++;
            else if (error is QuantSharpException) rejected++;
            else findings.Add(new(target, i, error.GetType().FullName!, FirstLines(error)));
            long limit = AllocationAllowanceBytes + AllocationPerInputByte * input.Length;
            if (allocated > limit)
                findings.Add(new(target, i, "allocation", $"{allocated} bytes allocated for a {input.Length}-byte input (limit {limit})"));
        }
        return new FuzzTargetReport(target, cases, accepted, rejected, findings, clock.Elapsed.TotalSeconds);
    }

    private static string FirstLines(Exception e)
    {
        string where = e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("QuantSharp"))?.Trim() ?? "";
        return $"{e.Message.Split('\n')[0]} {where}";
    }

    private string WriteCase(FuzzTarget target, byte[] bytes)
    {
        string path = Path.Combine(_workDir, target switch
        {
            FuzzTarget.Safetensors => "case.safetensors",
            FuzzTarget.Gguf => "case.gguf",
            FuzzTarget.TokenizerJson => "tokenizer.json",
            _ => "config.json",
        });
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void Parse(FuzzTarget target, string path)
    {
        switch (target)
        {
            case FuzzTarget.Safetensors:
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var name in file.Names)
                {
                    using var scope = NewDisposeScope();
                    file.Read(name);
                }
                break;
            }
            case FuzzTarget.Gguf:
            {
                using var file = GgufFile.Open(path);
                foreach (var t in file.Tensors) file.ReadBytes(t.Name);
                break;
            }
            case FuzzTarget.TokenizerJson:
            {
                var tok = BpeTokenizer.FromFile(path);
                tok.Encode("Hello world, 123 tokens: ünïcödé <|endoftext|>\n");
                break;
            }
            default:
                ModelConfig.Parse(File.ReadAllText(path), path);
                break;
        }
    }

    private static byte[] SafetensorsSeed(string dir)
    {
        string path = Path.Combine(dir, "seed.safetensors");
        using (var scope = NewDisposeScope())
        {
            SafetensorsWriter.Write(path, new Dictionary<string, Tensor>
            {
                ["a.weight"] = arange(24, float32).reshape(4, 6),
                ["b.bias"] = arange(5, float32).to(bfloat16),
                ["c.index"] = arange(3, int64),
                ["d.scalar"] = tensor(1.5f, float16),
            }, new Dictionary<string, string> { ["note"] = "fuzz seed" });
        }
        return File.ReadAllBytes(path);
    }

    private static byte[] GgufSeed(string dir)
    {
        string path = Path.Combine(dir, "seed.gguf");
        var w = new GgufWriter();
        w.Add("general.architecture", GgufValue.Of("llama"));
        w.Add("llama.block_count", GgufValue.Of(1u));
        w.Add("tokenizer.ggml.tokens", GgufValue.Strings(["a", "b", "c"]));
        w.AddTensor("token_embd.weight", [2, 32], GgmlType.F32, () => new byte[2 * 32 * 4]);
        w.AddTensor("blk.0.attn_q.weight", [2, 32], GgmlType.Q8_0, () => new byte[2 * 34]);
        w.Write(path);
        return File.ReadAllBytes(path);
    }

    /// <summary>
    /// The model's tokenizer.json cut down to its first 512 vocabulary entries and the merges among them: the same
    /// structure (pre-tokenizer, added tokens, byte-level decoder), small enough for thousands of cases.
    /// </summary>
    private static byte[] TokenizerSeed(string path)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var model = json["model"]!.AsObject();
        var vocab = model["vocab"]!.AsObject();
        var kept = new JsonObject();
        foreach (var (token, id) in vocab)
            if (id!.GetValue<int>() < 512) kept[token] = id.GetValue<int>();
        model["vocab"] = kept;
        var merges = new JsonArray();
        foreach (var m in model["merges"]!.AsArray())
        {
            var (a, b) = m is JsonArray pair ? (pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>())
                : (m!.GetValue<string>().Split(' ')[0], m.GetValue<string>().Split(' ')[1]);
            if (kept.ContainsKey(a) && kept.ContainsKey(b) && kept.ContainsKey(a + b)) merges.Add(m!.DeepClone());
        }
        model["merges"] = merges;
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }
}
