using System.Globalization;
using System.Text.Json;

namespace QuantSharp.Tests.Cli;

/// <summary>quantize --method awq | teq | autoround through the real CLI.</summary>
public class BlockMethodCliTests
{
    private static readonly string[] Small =
    [
        "--format", "int", "--w-bits", "3", "--asym", "--w-group-size", "128", "--num-sequences", "2", "--seq-len", "64",
        "--eval-seq-len", "128", "--eval-max-windows", "2", "--device", "cpu", "--skip-baseline",
    ];

    [Fact]
    public void AutoRoundRunsAndReportsItsMethod()
    {
        using var dir = Fixtures.NewTempDir();
        string json = dir.File("q.json");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "autoround", "--iters", "2", "--json", json, .. Small]);
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        Assert.Contains("autoround 2 iters", r.StdOut);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal("autoround", doc.RootElement.GetProperty("config").GetProperty("method").GetString());
        Assert.Equal(28, doc.RootElement.GetProperty("layers").GetArrayLength());
        Assert.True(double.IsFinite(doc.RootElement.GetProperty("perplexity_after").GetDouble()));
    }

    [Fact]
    public void AwqSavedAsPseudoquantEvaluatesToTheSamePerplexity()
    {
        // The folded norms and v_proj/up_proj rows travel with the packed weights: a reload scores what was quantized.
        using var dir = Fixtures.NewTempDir();
        string saved = dir.File("awq");
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "awq", "--eval", Fixtures.EvalText,
            "--save", saved, "--export", "pseudoquant", .. Small]);
        Assert.True(q.ExitCode == 0, q.StdErr + q.StdOut);
        string line = q.StdOut.Split('\n').First(l => l.StartsWith("perplexity after", StringComparison.Ordinal));
        double inMemory = double.Parse(line.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
        var e = CliRunner.Run("eval", "--model", saved, "--data", Fixtures.EvalText, "--seq-len", "128", "--max-windows", "2", "--device", "cpu", "--quiet");
        Assert.True(e.ExitCode == 0, e.StdErr);
        double reloaded = double.Parse(e.StdOut.Split(' ')[1], CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(reloaded / inMemory - 1) < 1e-3, $"reloaded pseudoquant of AWQ {reloaded} vs in-memory {inMemory}");
    }

    [Fact]
    public void TeqOnAFloatFormatIsAnErrorNamingTheFlag()
    {
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "teq", "--format", "fp", "--w-bits", "4",
            "--w-group-size", "32", "--device", "cpu"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--format int", r.StdErr);
    }

    [Fact]
    public void UnknownAutoRoundPresetIsAnError()
    {
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--method", "autoround", "--autoround-preset", "fastest", .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--autoround-preset fastest", r.StdErr);
    }
}
