using QuantSharp.Calibration;
using QuantSharp.Eval.Tasks;

namespace QuantSharp.Tests.Eval.Tasks;

public class TaskDefinitionTests
{
    private static string Data => Path.Combine(Fixtures.TestData, "tasks-data");

    private static DocPrompt Build(string task, int doc, int k = 0, int? seed = null)
    {
        var spec = TaskSpec.Resolve(task);
        var docs = TaskDocument.ReadJsonl(Path.Combine(Data, spec.TestFile));
        foreach (var d in docs) DocumentPreprocessors.Apply(spec.Preprocess, d);
        var builder = new TaskPromptBuilder(spec);
        IReadOnlyList<TaskDocument> examples = [];
        if (k > 0)
        {
            var pool = TaskDocument.ReadJsonl(Path.Combine(Data, spec.FewShotFile!));
            foreach (var d in pool) DocumentPreprocessors.Apply(spec.Preprocess, d);
            var sampler = new FewShotSampler(pool, poolIsScoredSplit: false, seed ?? FewShotSampler.DefaultSeed);
            for (int i = 0; i < doc; i++) sampler.Sample(docs[i], k); // the sampler is one stream over the documents
            examples = sampler.Sample(docs[doc], k);
        }
        return builder.Build(docs[doc], examples);
    }

    [Fact]
    public void EveryShippedTaskParses()
    {
        var names = TaskSpec.BuiltInNames();
        foreach (string n in new[] { "arc_challenge", "arc_easy", "eval_a_lastword", "eval_a_next", "gsm8k", "hellaswag", "lambada", "piqa", "winogrande" })
            Assert.Contains(n, names);
        foreach (string n in names) Assert.Equal(n, TaskSpec.Resolve(n).Name);
    }

    [Fact]
    public void UnknownTaskAndBadDefinitionsNameTheProblem()
    {
        var e = Assert.Throws<QuantSharpException>(() => TaskSpec.Resolve("hellaswog"));
        Assert.Contains("hellaswog", e.Message);
        Assert.Contains("hellaswag", e.Message);
        e = Assert.Throws<QuantSharpException>(() => TaskSpec.Parse("{\"name\":\"x\",\"kind\":\"mc\",\"test_file\":\"a\"}", "x.json"));
        Assert.Contains("kind 'mc'", e.Message);
        e = Assert.Throws<QuantSharpException>(() => TaskSpec.Parse("{\"name\":\"x\",\"test_file\":\"a\",\"doc_to_choice\":\"c\"}", "x.json"));
        Assert.Contains("gold_field", e.Message);
    }

    [Fact]
    public void HellaSwagPromptIsCleanedAndCapitalisedAsLmEvalDoes()
    {
        var p = Build("hellaswag", 0);
        Assert.Equal("Baking cookies: A man puts a tray into the oven. He", p.Requests[0].Context);
        Assert.Equal(" closes the door and sets a timer.", p.Requests[0].Continuation);
        Assert.Equal(" throws the tray. out of the window.", p.Requests[1].Continuation); // " [title]" → ". "
        Assert.Equal(0, p.Gold);
        var p1 = Build("hellaswag", 1);
        Assert.Equal("Washing a car: A woman sprays the car with water. Then she", p1.Requests[0].Context);
        Assert.Equal("  sells the car.", p1.Requests[2].Continuation); // "[step]" dropped after the strip, so its space stays (as in lm-eval)
        Assert.Equal(1, p1.Gold);
    }

    [Fact]
    public void WinograndeFillsTheBlankInEachContextAndSharesTheContinuation()
    {
        var p = Build("winogrande", 1);
        Assert.Equal("The trophy does not fit in the suitcase because the trophy", p.Requests[0].Context);
        Assert.Equal("The trophy does not fit in the suitcase because the suitcase", p.Requests[1].Context);
        Assert.All(p.Requests, r => Assert.Equal(" is too small.", r.Continuation));
        Assert.Equal(1, p.Gold);
    }

    [Fact]
    public void ArcPiqaAndLambadaPrompts()
    {
        var arc = Build("arc_easy", 0);
        Assert.Equal("Question: Which of these is a liquid at room temperature?\nAnswer:", arc.Requests[0].Context);
        Assert.Equal(" water", arc.Requests[1].Continuation);
        Assert.Equal(1, arc.Gold); // answerKey "B" in choices.label
        Assert.Equal(0, Build("arc_challenge", 1).Gold); // numeric labels "1","2","3"
        var piqa = Build("piqa", 1);
        Assert.Equal("Question: Cool a hot drink\nAnswer:", piqa.Requests[0].Context);
        Assert.Equal([" Put it in the oven.", " Add an ice cube."], piqa.Requests.Select(r => r.Continuation));
        Assert.Equal(1, piqa.Gold);
        var lambada = Build("lambada", 0);
        Assert.Equal("She opened the door, looked at the rain and went back for her", lambada.Requests[0].Context);
        Assert.Equal(" umbrella", lambada.Requests[0].Continuation);
    }

    [Fact]
    public void FewShotExamplesAreDrawnAsPythonsRandomSampleWithSeed1234()
    {
        // python: r = random.Random(1234); r.sample(range(6), 2) → [3, 0], then [0, 5] for the next document.
        var p0 = Build("gsm8k", 0, k: 2);
        var p1 = Build("gsm8k", 1, k: 2);
        string[] train = File.ReadAllLines(Path.Combine(Data, "gsm8k", "train.jsonl"));
        string Shot(int i)
        {
            var d = System.Text.Json.JsonDocument.Parse(train[i]).RootElement;
            return "Question: " + d.GetProperty("question").GetString() + "\nAnswer: " + d.GetProperty("answer").GetString() + "\n\n";
        }
        Assert.Equal(Shot(3) + Shot(0) + "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:", p0.GenerationPrompt);
        Assert.Equal(Shot(0) + Shot(5) + "Question: A box holds 12 pens. How many pens are in 3 boxes?\nAnswer:", p1.GenerationPrompt);
        Assert.Equal("Tom has 3 + 4 = <<3+4=7>>7 apples.\n#### 7", p0.Reference);
    }

    [Fact]
    public void PythonRandomSampleMatchesCPython()
    {
        var r = new PythonRandom(1234);
        Assert.Equal([99, 56, 14, 0, 11, 74, 4], r.Sample(100, 7)); // set-rejection branch (n > setsize)
        Assert.Equal([0, 4, 1], r.Sample(5, 3));                    // pool branch
    }

    [Fact]
    public void FewShotFromTheScoredSplitSkipsTheDocumentItself()
    {
        var docs = Enumerable.Range(0, 10).Select(i => new TaskDocument(new System.Text.Json.Nodes.JsonObject { ["i"] = i }, "mem", i)).ToList();
        var sampler = new FewShotSampler(docs, poolIsScoredSplit: true);
        // python: random.Random(1234).sample(range(10), 3) → [7, 1, 0]; doc 0 drops itself.
        Assert.Equal([7, 1], sampler.Sample(docs[0], 2).Select(d => d.Index));
        // next draw [1, 0, 9]; doc 1 drops itself.
        Assert.Equal([0, 9], sampler.Sample(docs[1], 2).Select(d => d.Index));
    }

    [Theory]
    [InlineData("She has 5 + 3 = 8 apples.\n#### 8", "strict", "8")]
    [InlineData("The answer is 1,250 dollars.", "strict", "[invalid]")]
    [InlineData("The answer is 1,250 dollars.", "flexible", "1,250")]
    [InlineData("First 12 then 7 and finally $45.", "flexible", "$45.")]
    [InlineData("#### -3.5 and more", "strict", "-3.5")]
    public void Gsm8kExtractors(string generation, string filter, string expected)
    {
        var spec = TaskSpec.Resolve("gsm8k");
        var f = spec.Filters.Single(x => x.Name == (filter == "strict" ? "strict-match" : "flexible-extract"));
        Assert.Equal(expected, AnswerExtraction.Extract(generation, f));
    }

    [Fact]
    public void Gsm8kExactMatchIgnoresCommasDollarsTheChainAndAFinalPeriod()
    {
        var em = TaskSpec.Resolve("gsm8k").ExactMatch;
        Assert.True(AnswerExtraction.ExactMatch("1,000", "1200 - 200 = 1000 dollars.\n#### 1,000", em));
        Assert.True(AnswerExtraction.ExactMatch("$45.", "x\n#### 45", em));
        Assert.False(AnswerExtraction.ExactMatch("[invalid]", "x\n#### 45", em));
        Assert.Equal("ab", AnswerExtraction.CutAtStop("abQuestion: cd", ["Question:", "</s>"]));
    }
}
