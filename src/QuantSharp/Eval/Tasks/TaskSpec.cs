using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace QuantSharp.Eval.Tasks;

/// <summary>How a task's documents are scored (lm-evaluation-harness output types).</summary>
public enum TaskKind
{
    /// <summary>One context, several continuations; acc and acc_norm by log-likelihood (hellaswag, arc, piqa).</summary>
    MultipleChoice,
    /// <summary>Several contexts, one shared continuation scored after each (winogrande's partial evaluation).</summary>
    PartialChoice,
    /// <summary>The last word of a passage: greedy match of all its tokens, and perplexity (lambada).</summary>
    LastWord,
    /// <summary>Greedy generation until a stop string, answer extracted by regex, exact match (gsm8k).</summary>
    GenerateUntil,
}

/// <summary>A regex answer extractor (lm-eval's regex filter): the match, or the fallback when nothing matches.</summary>
public sealed record AnswerFilterSpec
{
    [JsonPropertyName("name")] public string Name { get; init; } = "none";
    /// <summary>Null means "take the generation as it is".</summary>
    [JsonPropertyName("regex")] public string? Regex { get; init; }
    /// <summary>Which match to take: 0 = first, −1 = last (lm-eval's group_select).</summary>
    [JsonPropertyName("group_select")] public int GroupSelect { get; init; }
    [JsonPropertyName("fallback")] public string Fallback { get; init; } = "[invalid]";
}

/// <summary>lm-eval's exact_match options.</summary>
public sealed record ExactMatchSpec
{
    [JsonPropertyName("ignore_case")] public bool IgnoreCase { get; init; }
    [JsonPropertyName("ignore_punctuation")] public bool IgnorePunctuation { get; init; }
    [JsonPropertyName("regexes_to_ignore")] public IReadOnlyList<string> RegexesToIgnore { get; init; } = [];
}

/// <summary>
/// A task definition, one small JSON file (tasks/*.json). Documents come from JSONL files under --tasks-data, read with
/// the public datasets' own field names. Templates are text with {field} / {a.b} / {list[0]} placeholders.
/// </summary>
public sealed record TaskSpec
{
    [JsonPropertyName("name")] public string Name { get; init; } = "";
    [JsonPropertyName("kind")] public string KindName { get; init; } = "multiple_choice";
    [JsonPropertyName("dataset")] public string? Dataset { get; init; }
    /// <summary>The scored split, a JSONL path relative to --tasks-data (or absolute).</summary>
    [JsonPropertyName("test_file")] public string TestFile { get; init; } = "";
    /// <summary>Where k-shot examples come from; absent = the scored split itself, minus the document being scored.</summary>
    [JsonPropertyName("fewshot_file")] public string? FewShotFile { get; init; }
    /// <summary>A built-in document transform that adds derived fields (hellaswag, winogrande).</summary>
    [JsonPropertyName("preprocess")] public string? Preprocess { get; init; }
    [JsonPropertyName("description")] public string Description { get; init; } = "";
    [JsonPropertyName("doc_to_text")] public string DocToText { get; init; } = "";
    /// <summary>A field path holding the list of choices (or, for partial choice, of contexts).</summary>
    [JsonPropertyName("doc_to_choice")] public string? DocToChoice { get; init; }
    /// <summary>Alternative to doc_to_choice: one template per choice (piqa's sol1, sol2).</summary>
    [JsonPropertyName("choice_templates")] public IReadOnlyList<string>? ChoiceTemplates { get; init; }
    [JsonPropertyName("doc_to_target")] public string? DocToTarget { get; init; }
    /// <summary>The field holding the gold answer of a choice task.</summary>
    [JsonPropertyName("gold_field")] public string? GoldField { get; init; }
    /// <summary>When set, gold = the index of gold_field's value in this list field (arc's answerKey in choices.label).</summary>
    [JsonPropertyName("gold_labels")] public string? GoldLabels { get; init; }
    /// <summary>When set, gold = this map applied to gold_field's value (winogrande's "1"/"2").</summary>
    [JsonPropertyName("gold_map")] public IReadOnlyDictionary<string, int>? GoldMap { get; init; }
    [JsonPropertyName("target_delimiter")] public string TargetDelimiter { get; init; } = " ";
    [JsonPropertyName("fewshot_delimiter")] public string FewShotDelimiter { get; init; } = "\n\n";
    [JsonPropertyName("num_fewshot")] public int NumFewShot { get; init; }
    [JsonPropertyName("until")] public IReadOnlyList<string> Until { get; init; } = [];
    [JsonPropertyName("max_gen_toks")] public int MaxGenTokens { get; init; } = 256;
    [JsonPropertyName("filters")] public IReadOnlyList<AnswerFilterSpec> Filters { get; init; } = [];
    [JsonPropertyName("exact_match")] public ExactMatchSpec ExactMatch { get; init; } = new();

    /// <summary>Where the definition was read from (for error messages).</summary>
    [JsonIgnore] public string Source { get; init; } = "";

    [JsonIgnore]
    public TaskKind Kind => KindName switch
    {
        "multiple_choice" => TaskKind.MultipleChoice,
        "partial_choice" => TaskKind.PartialChoice,
        "last_word" => TaskKind.LastWord,
        "generate_until" => TaskKind.GenerateUntil,
        _ => throw new QuantSharpException($"{Source}: kind '{KindName}' is not one of multiple_choice, partial_choice, last_word, generate_until."),
    };

    private static readonly JsonSerializerOptions Json = new() { ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public static TaskSpec Parse(string json, string source)
    {
        TaskSpec spec;
        try
        {
            spec = JsonSerializer.Deserialize<TaskSpec>(json, Json) ?? throw new QuantSharpException($"{source}: empty task definition.");
        }
        catch (JsonException e)
        {
            throw new QuantSharpException($"{source}: not a valid task definition ({e.Message}).");
        }
        spec = spec with { Source = source };
        spec.Validate();
        return spec;
    }

    private void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new QuantSharpException($"{Source}: \"name\" is missing.");
        if (string.IsNullOrWhiteSpace(TestFile)) throw new QuantSharpException($"{Source}: \"test_file\" is missing.");
        var kind = Kind;
        if (kind is TaskKind.MultipleChoice or TaskKind.PartialChoice)
        {
            if (DocToChoice is null && ChoiceTemplates is null)
                throw new QuantSharpException($"{Source}: a {KindName} task needs \"doc_to_choice\" or \"choice_templates\".");
            if (GoldField is null) throw new QuantSharpException($"{Source}: a {KindName} task needs \"gold_field\".");
        }
        if (kind is TaskKind.PartialChoice or TaskKind.GenerateUntil && DocToTarget is null)
            throw new QuantSharpException($"{Source}: a {KindName} task needs \"doc_to_target\".");
        if (NumFewShot < 0) throw new QuantSharpException($"{Source}: num_fewshot must be ≥ 0.");
    }

    /// <summary>
    /// A task by name (one of the definitions shipped in tasks/, embedded in the library) or by the path of a JSON file.
    /// </summary>
    public static TaskSpec Resolve(string nameOrPath)
    {
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || nameOrPath.Contains('/') || nameOrPath.Contains('\\'))
        {
            if (!File.Exists(nameOrPath)) throw new QuantSharpException($"--tasks {nameOrPath}: task file not found.");
            return Parse(File.ReadAllText(nameOrPath), nameOrPath);
        }
        var asm = typeof(TaskSpec).Assembly;
        using var stream = asm.GetManifestResourceStream("tasks/" + nameOrPath + ".json")
            ?? throw new QuantSharpException($"--tasks {nameOrPath}: no such task; built in: {string.Join(", ", BuiltInNames())} (or give a .json path).");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), "tasks/" + nameOrPath + ".json");
    }

    public static IReadOnlyList<string> BuiltInNames() =>
        typeof(TaskSpec).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("tasks/", StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Select(n => n["tasks/".Length..^".json".Length]).Order(StringComparer.Ordinal).ToList();
}
