using System.CommandLine;
using System.Diagnostics;
using QuantSharp.Backend;
using QuantSharp.Eval.Tasks;
using QuantSharp.IO.Tokenization;

namespace QuantSharp.Cli.Commands;

/// <summary>eval's task mode: --tasks names or JSON files, scored the way lm-evaluation-harness scores them.</summary>
internal sealed class TaskEvalOptions
{
    public Option<string?> Tasks { get; } = new("--tasks")
    {
        Description = "comma-separated task names (" + string.Join(", ", TaskSpec.BuiltInNames()) + ") or task .json files",
    };
    public Option<string> TasksData { get; } = new("--tasks-data")
    {
        Description = "folder the tasks' JSONL files are read from (test_file / fewshot_file are relative to it)",
        DefaultValueFactory = _ => ".",
    };
    public Option<int?> NumFewShot { get; } = new("--num-fewshot") { Description = "k-shot examples per question (default: each task's own)" };
    public Option<int?> Limit { get; } = new("--limit") { Description = "score only the first N documents of each task" };
    public Option<long> FewShotSeed { get; } = new("--fewshot-seed") { Description = "seed of the few-shot sampler", DefaultValueFactory = _ => FewShotSampler.DefaultSeed };
    public Option<bool> ApplyChatTemplate { get; } = new("--apply-chat-template") { Description = "wrap prompts in tokenizer_config.json's chat_template" };
    public Option<int?> MaxLength { get; } = new("--max-length") { Description = "input window in tokens (default: max_position_embeddings)" };

    public static TaskEvalOptions Create() => new();

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Tasks);
        cmd.Options.Add(TasksData);
        cmd.Options.Add(NumFewShot);
        cmd.Options.Add(Limit);
        cmd.Options.Add(FewShotSeed);
        cmd.Options.Add(ApplyChatTemplate);
        cmd.Options.Add(MaxLength);
    }

    public static int Run(ParseResult r, TaskEvalOptions o, string modelArg, string dtypeName, string deviceName, string? jsonPath, bool quiet)
    {
        var total = Stopwatch.StartNew();
        var specs = r.GetValue(o.Tasks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(TaskSpec.Resolve).ToList();
        if (specs.Count == 0) throw new QuantSharpException("--tasks: no task named.");
        string dataDir = r.GetValue(o.TasksData)!;
        if (!Directory.Exists(dataDir)) throw new QuantSharpException($"--tasks-data {dataDir}: folder not found.");
        if (r.GetValue(o.NumFewShot) is < 0) throw new QuantSharpException("--num-fewshot must be ≥ 0.");

        string dir = ModelInput.Require(modelArg);
        var dev = TorchRuntime.ResolveDevice(deviceName);
        var dt = CliCommon.ParseDType(dtypeName);
        var tokenizer = ModelInput.Tokenizer(dir);
        Func<string, string>? chat = null;
        if (r.GetValue(o.ApplyChatTemplate))
        {
            if (!Directory.Exists(dir)) throw new QuantSharpException("--apply-chat-template needs a model folder with tokenizer_config.json.");
            chat = ChatTemplate.FromModelDirectory(dir).UserTurn;
        }
        using var loaded = ModelInput.Load(dir, dt, dev);
        var options = new TaskRunOptions
        {
            NumFewShot = r.GetValue(o.NumFewShot),
            Limit = r.GetValue(o.Limit),
            FewShotSeed = r.GetValue(o.FewShotSeed),
            DataDirectory = dataDir,
            ChatTemplate = chat,
            MaxLength = r.GetValue(o.MaxLength),
        };
        var results = new List<TaskResult>();
        foreach (var spec in specs)
        {
            var result = CliCommon.WithProgress(spec.Name, quiet, p => TaskRunner.Run(loaded.Model, tokenizer, spec, options, p));
            results.Add(result);
            string metrics = string.Join("  ", result.Metrics.Where(m => !m.Key.EndsWith("_stderr", StringComparison.Ordinal))
                .Select(m => $"{m.Key} {m.Value:F4}"));
            Console.WriteLine($"{spec.Name} ({result.NumFewShot}-shot, {result.Docs.Count} docs, {result.Seconds:F1} s): {metrics}");
        }
        Console.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s, {dt} on {dev}");
        if (jsonPath is not null)
        {
            var run = new Dictionary<string, string>
            {
                ["model"] = Path.GetFullPath(dir),
                ["dtype"] = dtypeName,
                ["device"] = dev.ToString(),
                ["tasks_data"] = Path.GetFullPath(dataDir),
                ["chat_template"] = chat is null ? "no" : "yes",
            };
            TaskReport.Write(jsonPath, TaskReport.ToJson(results, run));
        }
        return 0;
    }
}
