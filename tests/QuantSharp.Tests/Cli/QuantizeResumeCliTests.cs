using System.Text.Json;

namespace QuantSharp.Tests.Cli;

public class QuantizeResumeCliTests
{
    private static readonly string[] Rtn =
    [
        "quantize", "--model", Fixtures.MicroQwen3, "--format", "int", "--w-bits", "4", "--w-group-size", "64", "--skip-baseline",
        "--eval", Fixtures.EvalText, "--eval-seq-len", "128", "--eval-max-windows", "2", "--device", "cpu",
    ];

    [Fact]
    public void CheckpointDirThenResumeFinishesAndReportsTheMemoryEstimate()
    {
        using var dir = Fixtures.NewTempDir();
        string ck = dir.File("ck"), json = dir.File("q.json");
        var first = CliRunner.Run([.. Rtn, "--checkpoint-dir", ck, "--json", json]);
        Assert.True(first.ExitCode == 0, first.StdErr + first.StdOut);
        Assert.True(File.Exists(Path.Combine(ck, "state.json")));
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var root = doc.RootElement;
            Assert.True(root.GetProperty("estimated_peak_cpu_bytes").GetInt64() > 0);
            Assert.Equal(JsonValueKind.Null, root.GetProperty("estimated_peak_gpu_bytes").ValueKind);
        }
        // A finished checkpoint resumes to the same model without quantizing anything again.
        var again = CliRunner.Run([.. Rtn, "--resume", ck]);
        Assert.True(again.ExitCode == 0, again.StdErr + again.StdOut);
        Assert.Contains("4 of 4 decoder layers were already done", again.StdOut);
    }

    [Fact]
    public void ResumeFromAFolderWithoutACheckpointExitsTwo()
    {
        using var dir = Fixtures.NewTempDir();
        var r = CliRunner.Run([.. Rtn, "--resume", dir.Path]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--resume", r.StdErr);
        Assert.Contains("state.json", r.StdErr);
    }
}
