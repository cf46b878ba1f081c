using QuantSharp.Eval.Tasks;

namespace QuantSharp.Tests.Eval.Tasks;

public class CompareTableTests
{
    [Fact]
    public void RecoveryIsQuantizedOverOriginalAndOriginalOverQuantizedForPerplexity()
    {
        using var dir = Fixtures.NewTempDir();
        File.WriteAllText(dir.File("bf16.json"), """
            {"results": {"hellaswag": {"acc": 0.5, "acc_stderr": 0.01, "acc_norm": 0.6, "n": 100},
                         "lambada": {"acc": 0.4, "perplexity": 20.0}, "only_a": {"acc": 1.0}}}
            """);
        File.WriteAllText(dir.File("w4.json"), """
            {"results": {"hellaswag": {"acc": 0.45, "acc_norm": 0.6}, "lambada": {"acc": 0.3, "perplexity": 25.0}}}
            """);
        string table = TaskReport.CompareTable(dir.File("bf16.json"), dir.File("w4.json"));
        Assert.Equal(
            "| task | metric | bf16 | w4 | recovery % |\n" +
            "|---|---|---:|---:|---:|\n" +
            "| hellaswag | acc | 0.5000 | 0.4500 | 90.00 |\n" +
            "| hellaswag | acc_norm | 0.6000 | 0.6000 | 100.00 |\n" +
            "| lambada | acc | 0.4000 | 0.3000 | 75.00 |\n" +
            "| lambada | perplexity | 20.0000 | 25.0000 | 80.00 |\n", table);
    }

    [Fact]
    public void AFileWithoutResultsIsNamed()
    {
        using var dir = Fixtures.NewTempDir();
        File.WriteAllText(dir.File("ppl.json"), "{\"perplexity\": 12.5}");
        var e = Assert.Throws<QuantSharpException>(() => TaskReport.ReadMetrics(dir.File("ppl.json")));
        Assert.Contains("ppl.json", e.Message);
    }
}
