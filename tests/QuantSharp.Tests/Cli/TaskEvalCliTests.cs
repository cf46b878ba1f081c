using System.Text.Json;

namespace QuantSharp.Tests.Cli;

public class TaskEvalCliTests
{
    private static string TasksData => Path.Combine(Fixtures.TestData, "tasks-data");

    [Fact]
    public void EvalTasksWritesMetricsAndPerQuestionLogLikelihoodsAndCompareReadsThem()
    {
        using var dir = Fixtures.NewTempDir();
        string json = dir.File("run.json");
        // A task given by name and one given as a file path, in one run.
        string taskFile = Path.Combine(Fixtures.RepoRoot, "tasks", "eval_a_lastword.json");
        var r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--tasks", "eval_a_next," + taskFile, "--tasks-data", TasksData,
            "--limit", "2", "--device", "cpu", "--quiet", "--json", json);
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Contains("eval_a_next (0-shot, 2 docs", r.StdOut);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var results = doc.RootElement.GetProperty("results");
            Assert.Equal(2, results.GetProperty("eval_a_next").GetProperty("n").GetInt32());
            Assert.InRange(results.GetProperty("eval_a_next").GetProperty("acc").GetDouble(), 0, 1);
            Assert.True(results.GetProperty("eval_a_lastword").GetProperty("perplexity").GetDouble() > 1);
            var sample = doc.RootElement.GetProperty("samples").GetProperty("eval_a_next")[0];
            Assert.Equal(4, sample.GetProperty("loglikelihoods").GetArrayLength());
        }
        var c = CliRunner.Run("compare", json, json, "--labels", "bf16,same");
        Assert.True(c.ExitCode == 0, c.StdErr);
        Assert.Contains("| task | metric | bf16 | same | recovery % |", c.StdOut);
        Assert.Contains("| eval_a_lastword | perplexity |", c.StdOut);
        Assert.Contains("| 100.00 |", c.StdOut);
    }

    [Fact]
    public void BadTaskInputsExitTwoWithOneLine()
    {
        var r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--tasks", "hellaswog", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("hellaswog", r.StdErr);
        r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--data", r.StdErr);
        Assert.Contains("--tasks", r.StdErr);
        r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--tasks", "hellaswag", "--tasks-data", "/nonexistent/tasks", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("/nonexistent/tasks", r.StdErr);
        r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--tasks", "hellaswag", "--tasks-data", TasksData, "--apply-chat-template", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("chat_template", r.StdErr);
        r = CliRunner.Run("compare", "/nonexistent/a.json", "/nonexistent/b.json");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("/nonexistent/a.json", r.StdErr);
    }
}
