using System.Text.Json;
using QuantSharp.Eval.Tasks;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Eval.Tasks;

/// <summary>
/// Hand-made tasks whose answers are forced by construction: a choice is the model's own greedy continuation of the
/// context (every token the argmax), set against gibberish of the same length; or it extends another choice by more
/// tokens, which can only lower the summed log-likelihood. Gold labels are then set so that acc / acc_norm / exact
/// match take known values.
/// </summary>
public class ForcedAnswerTaskTests
{
    private const string Prompt = "The President of the United States said that the people of this country";
    private const string Other = "Linux kernel documentation describes how the scheduler";

    private static readonly Lazy<(CausalLM Model, BpeTokenizer Tokenizer)> Micro = new(() =>
        (CausalLM.Load(Fixtures.MicroQwen3, float32, CPU), BpeTokenizer.FromDirectory(Fixtures.MicroQwen3)));

    /// <summary>The text of the first <paramref name="tokens"/> greedy tokens after <paramref name="prompt"/>.</summary>
    private static string Greedy(string prompt, int tokens)
    {
        var (model, tokenizer) = Micro.Value;
        var ids = TextGenerator.Generate(model, tokenizer.Encode(prompt), new GenerationOptions(tokens));
        return tokenizer.Decode(ids);
    }

    private static string Gibberish(string like) => new(like.Select((c, i) => c == ' ' ? ' ' : "qzxjvk"[i % 6]).ToArray());

    private static string WriteTask(TempDir dir, string name, object spec, IEnumerable<object> docs)
    {
        Directory.CreateDirectory(Path.Combine(dir.Path, name));
        File.WriteAllLines(Path.Combine(dir.Path, name, "test.jsonl"), docs.Select(d => JsonSerializer.Serialize(d)));
        string path = dir.File(name + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(spec));
        return path;
    }

    [Fact]
    public void AccAndAccNormEqualHandComputedValues()
    {
        using var dir = Fixtures.NewTempDir();
        // Docs 0-2: greedy continuation vs gibberish of the same length, gold 0, 0, 1 → acc = acc_norm = 2/3 so far
        // (equal lengths: normalising cannot change the pick). Doc 3: the first greedy token vs the first 12; the
        // longer one adds log-probabilities < 0, so acc picks choice 0; gold 1 → acc 2/4.
        string[] prompts = [Prompt, Other, "Call me Ishmael. Some years ago, never mind how long precisely,"];
        var docs = new List<object>();
        for (int d = 0; d < 3; d++)
        {
            string truth = Greedy(prompts[d], 6);
            docs.Add(new { context = prompts[d], choices = new[] { truth.TrimStart(), Gibberish(truth.TrimStart()) }, label = d < 2 ? 0 : 1 });
        }
        string shortChoice = Greedy(Prompt, 1).TrimStart(), longChoice = Greedy(Prompt, 12).TrimStart();
        docs.Add(new { context = Prompt, choices = new[] { shortChoice, longChoice }, label = 1 });
        string task = WriteTask(dir, "forced_mc", new { name = "forced_mc", kind = "multiple_choice", test_file = "forced_mc/test.jsonl",
            doc_to_text = "{context}", doc_to_choice = "choices", gold_field = "label" }, docs);

        var result = Run(task, dir.Path);
        Assert.Equal([0, 0, 0, 0], result.Docs.Select(d => d.Prediction));
        Assert.Equal(2.0 / 4, result.Metrics["acc"], 12);
        // acc_norm by hand: log-likelihood over the choice's character length (without the target delimiter).
        var last = result.Docs[3];
        int normPick = last.LogLikelihoods[0] / shortChoice.Length >= last.LogLikelihoods[1] / longChoice.Length ? 0 : 1;
        Assert.Equal([0, 0, 0, normPick], result.Docs.Select(d => d.PredictionNorm));
        Assert.Equal((2.0 + (normPick == 1 ? 1 : 0)) / 4, result.Metrics["acc_norm"], 12);
        Assert.Equal(Math.Sqrt(0.5 * 0.5 * 4 / 3 / 4), result.Metrics["acc_stderr"], 12);
    }

    [Fact]
    public void PartialChoiceScoresTheSharedContinuationAfterEachContext()
    {
        using var dir = Fixtures.NewTempDir();
        // winogrande-style: the continuation is the greedy one after Prompt; after gibberish it is far less likely.
        string continuation = Greedy(Prompt, 8).TrimStart();
        string wrong = "qzx vkj qzx vkj qzx";
        var docs = new[]
        {
            new { contexts = new[] { Prompt, wrong }, continuation, gold = 0 },
            new { contexts = new[] { wrong, Prompt }, continuation, gold = 0 },
        };
        string task = WriteTask(dir, "forced_partial", new { name = "forced_partial", kind = "partial_choice", test_file = "forced_partial/test.jsonl",
            doc_to_choice = "contexts", doc_to_target = "{continuation}", gold_field = "gold" }, docs);
        var result = Run(task, dir.Path);
        Assert.Equal([0, 1], result.Docs.Select(d => d.Prediction));
        Assert.Equal(0.5, result.Metrics["acc"], 12);
    }

    [Fact]
    public void LastWordAccuracyIsTheGreedyMatchAndPerplexityTheMeanLogLikelihood()
    {
        using var dir = Fixtures.NewTempDir();
        // The first prompt whose greedy next token is one space-prefixed word, so the task's split gives it back whole.
        string[] candidates = [Prompt, Other, "We will work together to", "Tonight I ask the Congress to", "The file system"];
        string prompt = candidates.First(c => System.Text.RegularExpressions.Regex.IsMatch(Greedy(c, 1), "^ [A-Za-z]+$"));
        string word = Greedy(prompt, 1);
        var docs = new[] { new { text = prompt + word }, new { text = prompt + " qzxjvkqzx" } };
        string task = WriteTask(dir, "forced_lw", new { name = "forced_lw", kind = "last_word", test_file = "forced_lw/test.jsonl", doc_to_text = "{text}" }, docs);
        var result = Run(task, dir.Path);
        Assert.Equal([true, false], result.Docs.Select(d => d.IsGreedy));
        Assert.Equal(0.5, result.Metrics["acc"], 12);
        double meanLl = result.Docs.Average(d => d.LogLikelihoods[0]);
        Assert.Equal(Math.Exp(-meanLl), result.Metrics["perplexity"], 9);
    }

    [Fact]
    public void GenerationExactMatchEqualsHandComputedValue()
    {
        using var dir = Fixtures.NewTempDir();
        // Greedy generation is deterministic: the reference of doc 0 is the first word the model generates, that of
        // doc 1 another word → exact match 1/2 after the first-word extractor.
        string generated = Greedy(Prompt, 6);
        string firstWord = System.Text.RegularExpressions.Regex.Match(generated, "[A-Za-z]+").Value;
        Assert.NotEmpty(firstWord);
        var docs = new[] { new { question = Prompt, answer = firstWord.ToUpperInvariant() + "." }, new { question = Prompt, answer = "zebra" } };
        string task = WriteTask(dir, "forced_gen", new
        {
            name = "forced_gen", kind = "generate_until", test_file = "forced_gen/test.jsonl", doc_to_text = "{question}",
            doc_to_target = "{answer}", until = new[] { "\n\n" }, max_gen_toks = 6,
            filters = new object[] { new { name = "first-word", regex = "([A-Za-z]+)", group_select = 0 } },
            exact_match = new { ignore_case = true, regexes_to_ignore = new[] { "\\.$" } },
        }, docs);
        var result = Run(task, dir.Path);
        Assert.All(result.Docs, d => Assert.Equal(AnswerExtraction.CutAtStop(generated, ["\n\n"]), d.Generation));
        Assert.All(result.Docs, d => Assert.Equal(firstWord, d.Extracted!["first-word"]));
        Assert.Equal([true, false], result.Docs.Select(d => d.ExactMatch!["first-word"]));
        Assert.Equal(0.5, result.Metrics["exact_match,first-word"], 12);
    }

    private static TaskResult Run(string taskPath, string dataDir)
    {
        var (model, tokenizer) = Micro.Value;
        return TaskRunner.Run(model, tokenizer, TaskSpec.Resolve(taskPath), new TaskRunOptions { DataDirectory = dataDir });
    }
}
