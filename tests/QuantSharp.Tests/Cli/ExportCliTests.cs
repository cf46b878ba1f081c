using System.Globalization;

namespace QuantSharp.Tests.Cli;

/// <summary>quantize --export FORMAT, quantsharp export, and eval/generate on packed folders, through the real CLI.</summary>
public class ExportCliTests
{
    private static readonly string[] Small =
    [
        "--num-sequences", "4", "--seq-len", "128", "--eval-seq-len", "128", "--eval-max-windows", "4", "--device", "cpu",
    ];

    private static double EvalPerplexity(string model)
    {
        var e = CliRunner.Run("eval", "--model", model, "--data", Fixtures.EvalText, "--seq-len", "128", "--max-windows", "4", "--device", "cpu", "--quiet");
        Assert.True(e.ExitCode == 0, e.StdErr);
        return double.Parse(e.StdOut.Split(' ')[1], CultureInfo.InvariantCulture);
    }

    private static double AfterPerplexity(CliResult q)
    {
        string line = q.StdOut.Split('\n').First(l => l.StartsWith("perplexity after", StringComparison.Ordinal));
        return double.Parse(line.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
    }

    [Fact]
    public void QuantizeExportsRealquantThatEvalAndGenerateLoad()
    {
        using var dir = Fixtures.NewTempDir();
        string saved = dir.File("fpq");
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "nvfp", "--w-bits", "4", "--a-bits", "4",
            "--transform", "hadamard", "--transform-group-size", "16", "--calib", Fixtures.CalibText, "--eval", Fixtures.EvalText,
            "--skip-baseline", "--save", saved, "--export", "fp-quant", .. Small]);
        Assert.True(q.ExitCode == 0, q.StdErr);
        Assert.Contains("\"quant_method\": \"fp_quant\"", File.ReadAllText(Path.Combine(saved, "config.json")));
        double reloaded = EvalPerplexity(saved), inMemory = AfterPerplexity(q);
        Assert.True(Math.Abs(reloaded / inMemory - 1) < 1e-3, $"eval of fp-quant export {reloaded} vs in-memory {inMemory}");
        var g = CliRunner.Run("generate", "--model", saved, "--prompt", "The", "--max-new-tokens", "4", "--device", "cpu");
        Assert.True(g.ExitCode == 0, g.StdErr);
        Assert.StartsWith("The", g.StdOut);
    }

    [Fact]
    public void ExportFromAPseudoquantFolderMatchesItsPerplexity()
    {
        using var dir = Fixtures.NewTempDir();
        string pseudo = dir.File("pq"), gptq = dir.File("gptq");
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "int", "--w-bits", "4", "--w-group-size", "64",
            "--eval", Fixtures.EvalText, "--skip-baseline", "--save", pseudo, .. Small]);
        Assert.True(q.ExitCode == 0, q.StdErr);
        var x = CliRunner.Run("export", "--model", pseudo, "--to", "gptq", "--out", gptq, "--device", "cpu");
        Assert.True(x.ExitCode == 0, x.StdErr);
        double reloaded = EvalPerplexity(gptq), inMemory = AfterPerplexity(q);
        Assert.True(Math.Abs(reloaded / inMemory - 1) < 1e-3, $"eval of gptq export {reloaded} vs in-memory {inMemory}");
    }

    [Fact]
    public void ARotatedRunToGptqExitsTwoAndWritesNothing()
    {
        using var dir = Fixtures.NewTempDir();
        string pseudo = dir.File("pq"), outDir = dir.File("gptq");
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "int", "--w-bits", "4", "--w-group-size", "64",
            "--transform", "hadamard", "--transform-group-size", "64", "--eval", Fixtures.EvalText, "--skip-baseline", "--save", pseudo, .. Small]);
        Assert.True(q.ExitCode == 0, q.StdErr);
        var x = CliRunner.Run("export", "--model", pseudo, "--to", "gptq", "--out", outDir, "--device", "cpu");
        Assert.Equal(2, x.ExitCode);
        Assert.Contains("rotation", x.StdErr);
        Assert.False(Directory.Exists(outDir));
        Assert.Single(Directory.EnumerateFileSystemEntries(dir.Path)); // only the pseudoquant folder: no temporary left
    }

    [Fact]
    public void AnUnknownExportFormatFailsBeforeQuantizing()
    {
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--export", "gguf-ish", "--save", "/tmp/never", .. Small]);
        Assert.Equal(2, q.ExitCode);
        Assert.Contains("--export gguf-ish: unknown format", q.StdErr);
        Assert.DoesNotContain("perplexity", q.StdOut);
    }

    [Fact]
    public void AnExportTheRunCouldNotProduceFailsBeforeQuantizing()
    {
        using var dir = Fixtures.NewTempDir();
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "int", "--w-bits", "4", "--transform", "hadamard",
            "--eval", Fixtures.EvalText, "--skip-baseline", "--save", dir.File("x"), "--export", "awq", .. Small]);
        Assert.Equal(2, q.ExitCode);
        Assert.Contains("awq export: cannot carry the hadamard rotation", q.StdErr);
        Assert.DoesNotContain("perplexity", q.StdOut);
        Assert.False(Directory.Exists(dir.File("x")));
    }

    [Theory]
    [InlineData("gguf", "export-gguf")]
    [InlineData("onnx", "export-onnx")]
    public void ExportToGgufOrOnnxPointsToTheirOwnVerbs(string target, string verb)
    {
        var r = CliRunner.Run("export", "--model", Fixtures.MicroQwen3, "--to", target, "--out", Path.Combine(Path.GetTempPath(), "qs-never-written"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(verb, r.StdErr);
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "qs-never-written")));
    }
}
