using QuantSharp.IO.Tokenization;
using QuantSharp.Models;

namespace QuantSharp.Eval.Tasks;

public sealed record TaskRunOptions
{
    /// <summary>k; null = the task's own num_fewshot.</summary>
    public int? NumFewShot { get; init; }
    /// <summary>Score only the first N documents.</summary>
    public int? Limit { get; init; }
    public long FewShotSeed { get; init; } = FewShotSampler.DefaultSeed;
    /// <summary>Folder the task's test_file / fewshot_file are relative to.</summary>
    public string DataDirectory { get; init; } = ".";
    /// <summary>Wraps a prompt in the model's chat template (one user turn, generation prompt added), or null.</summary>
    public Func<string, string>? ChatTemplate { get; init; }
    /// <summary>Input window in tokens; null = the model's max_position_embeddings.</summary>
    public int? MaxLength { get; init; }
}

/// <summary>Per-document outcome, kept in the JSON so runs can be compared question by question.</summary>
public sealed record DocResult(
    int Doc,
    int Gold,
    IReadOnlyList<double> LogLikelihoods,
    int Prediction,
    int PredictionNorm,
    bool IsGreedy,
    string? Generation = null,
    IReadOnlyDictionary<string, string>? Extracted = null,
    IReadOnlyDictionary<string, bool>? ExactMatch = null);

public sealed record TaskResult(string Task, TaskKind Kind, int NumFewShot, IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<DocResult> Docs, double Seconds);

/// <summary>Runs one task over a model: builds every document's prompt, scores it, aggregates lm-eval's metrics.</summary>
public static class TaskRunner
{
    public static TaskResult Run(CausalLM model, BpeTokenizer tokenizer, TaskSpec spec, TaskRunOptions options,
        Action<int, int>? progress = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var docs = LoadDocs(spec, spec.TestFile, options.DataDirectory);
        int k = options.NumFewShot ?? spec.NumFewShot;
        FewShotSampler? sampler = null;
        if (k > 0)
        {
            bool own = spec.FewShotFile is null;
            var pool = own ? docs : LoadDocs(spec, spec.FewShotFile!, options.DataDirectory);
            sampler = new FewShotSampler(pool, own, options.FewShotSeed);
        }
        if (options.Limit is { } limit && limit >= 0 && limit < docs.Count) docs = docs.GetRange(0, limit);

        var builder = new TaskPromptBuilder(spec, options.ChatTemplate);
        var encoder = new RequestEncoder(tokenizer);
        var scorer = new LoglikelihoodScorer(model, options.MaxLength);
        var results = new List<DocResult>(docs.Count);
        for (int i = 0; i < docs.Count; i++)
        {
            var doc = docs[i];
            var examples = sampler?.Sample(doc, k) ?? [];
            var prompt = builder.Build(doc, examples);
            results.Add(spec.Kind == TaskKind.GenerateUntil
                ? Generate(model, tokenizer, encoder, spec, prompt, options.MaxLength ?? model.Config.MaxPositionEmbeddings)
                : ScoreChoices(scorer, encoder, prompt));
            progress?.Invoke(i + 1, docs.Count);
        }
        return new TaskResult(spec.Name, spec.Kind, k, Aggregate(spec, results), results, watch.Elapsed.TotalSeconds);
    }

    private static List<TaskDocument> LoadDocs(TaskSpec spec, string file, string dataDir)
    {
        string path = Path.IsPathRooted(file) ? file : Path.Combine(dataDir, file);
        var docs = TaskDocument.ReadJsonl(path);
        foreach (var d in docs) DocumentPreprocessors.Apply(spec.Preprocess, d);
        return docs;
    }

    public static DocResult ScoreChoices(LoglikelihoodScorer scorer, RequestEncoder encoder, DocPrompt prompt)
    {
        var scores = scorer.Score(prompt.Requests.Select(encoder.Encode).ToList());
        var lls = scores.Select(s => s.LogLikelihood).ToArray();
        // acc_norm divides by the character length of each choice's text, as lm-eval's multiple_choice does (Python's
        // len: code points, so a character outside the BMP counts once).
        var normed = lls.Select((ll, i) => ll / Math.Max(1, prompt.Choices[i].EnumerateRunes().Count())).ToArray();
        return new DocResult(prompt.Doc.Index, prompt.Gold, lls, ArgMax(lls), ArgMax(normed), scores[prompt.Gold].IsGreedy);
    }

    private static DocResult Generate(CausalLM model, BpeTokenizer tokenizer, RequestEncoder encoder, TaskSpec spec,
        DocPrompt prompt, int maxLength)
    {
        var stops = spec.Until.ToList();
        if (tokenizer.EosTokenId is { } eos && tokenizer.IdToToken(eos) is { } eosText) stops.Add(eosText);
        int[] ids = encoder.Encode(prompt.GenerationPrompt!);
        int budget = maxLength - spec.MaxGenTokens;
        if (budget < 1) throw new QuantSharpException($"{spec.Source}: max_gen_toks {spec.MaxGenTokens} leaves no room in a {maxLength}-token window.");
        if (ids.Length > budget) ids = ids[^budget..];
        var stopIds = new HashSet<int>(model.Config.EosTokenIds);
        if (tokenizer.EosTokenId is { } e) stopIds.Add(e);
        var options = new GenerationOptions(spec.MaxGenTokens, StopTokens: stopIds)
        {
            StopWhen = produced => stops.Any(s => tokenizer.Decode(produced).Contains(s, StringComparison.Ordinal)),
        };
        var produced = TextGenerator.Generate(model, ids, options);
        string text = AnswerExtraction.CutAtStop(tokenizer.Decode(produced), stops);
        var filters = spec.Filters.Count > 0 ? spec.Filters : [new AnswerFilterSpec()];
        var extracted = filters.ToDictionary(f => f.Name, f => AnswerExtraction.Extract(text, f));
        var correct = extracted.ToDictionary(p => p.Key, p => AnswerExtraction.ExactMatch(p.Value, prompt.Reference!, spec.ExactMatch));
        return new DocResult(prompt.Doc.Index, 0, [], 0, 0, false, text, extracted, correct);
    }

    /// <summary>lm-eval's metrics: the mean of per-document scores, with the sample standard error beside it.</summary>
    public static IReadOnlyDictionary<string, double> Aggregate(TaskSpec spec, IReadOnlyList<DocResult> docs)
    {
        var metrics = new Dictionary<string, double>();
        void Mean(string name, IEnumerable<double> values)
        {
            var v = values.ToArray();
            double mean = v.Length == 0 ? double.NaN : v.Average();
            metrics[name] = mean;
            metrics[name + "_stderr"] = v.Length < 2 ? double.NaN : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1) / v.Length);
        }
        switch (spec.Kind)
        {
            case TaskKind.MultipleChoice:
                Mean("acc", docs.Select(d => d.Prediction == d.Gold ? 1.0 : 0.0));
                Mean("acc_norm", docs.Select(d => d.PredictionNorm == d.Gold ? 1.0 : 0.0));
                break;
            case TaskKind.PartialChoice:
                Mean("acc", docs.Select(d => d.Prediction == d.Gold ? 1.0 : 0.0));
                break;
            case TaskKind.LastWord:
                Mean("acc", docs.Select(d => d.IsGreedy ? 1.0 : 0.0));
                // lm-eval's perplexity aggregate: exp of minus the mean per-document log-likelihood.
                metrics["perplexity"] = Math.Exp(-docs.Average(d => d.LogLikelihoods[0]));
                break;
            case TaskKind.GenerateUntil:
                foreach (var f in spec.Filters.Count > 0 ? spec.Filters : [new AnswerFilterSpec()])
                    Mean("exact_match," + f.Name, docs.Select(d => d.ExactMatch![f.Name] ? 1.0 : 0.0));
                break;
        }
        return metrics;
    }

    private static int ArgMax(double[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
