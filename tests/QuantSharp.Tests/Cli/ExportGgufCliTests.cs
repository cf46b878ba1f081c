namespace QuantSharp.Tests.Cli;

public sealed class ExportGgufCliTests
{
    [Fact]
    public void ExportThenEvalTheGgufFile()
    {
        using var dir = Fixtures.NewTempDir();
        string gguf = dir.File("micro.gguf");
        var export = CliRunner.Run("export-gguf", "--model", Fixtures.MicroQwen3, "--gguf-type", "q4_k",
            "--imatrix-calib", Fixtures.CalibText, "--imatrix-sequences", "2", "--imatrix-seq-len", "64", "--out", gguf, "--quiet");
        Assert.True(export.ExitCode == 0, export.StdErr);
        Assert.Contains("q4_k + imatrix", export.StdOut, StringComparison.Ordinal);
        var eval = CliRunner.Run("eval", "--model", gguf, "--data", Fixtures.EvalText, "--seq-len", "128", "--max-windows", "2", "--quiet");
        Assert.True(eval.ExitCode == 0, eval.StdErr);
        Assert.Contains("perplexity", eval.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void BadType_ExitsTwoNamingTheFlag_AndWritesNothing()
    {
        using var dir = Fixtures.NewTempDir();
        string gguf = dir.File("x.gguf");
        var r = CliRunner.Run("export-gguf", "--model", Fixtures.MicroQwen3, "--gguf-type", "q3_z", "--out", gguf);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--gguf-type q3_z", r.StdErr, StringComparison.Ordinal);
        Assert.False(File.Exists(gguf));
    }

    [Fact]
    public void EvalOfACorruptGguf_ExitsTwoNamingTheFile()
    {
        using var dir = Fixtures.NewTempDir();
        string gguf = dir.File("broken.gguf");
        File.WriteAllBytes(gguf, [(byte)'G', (byte)'G', (byte)'U', (byte)'F', 3, 0, 0, 0, 9]);
        var r = CliRunner.Run("eval", "--model", gguf, "--data", Fixtures.EvalText);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("broken.gguf", r.StdErr, StringComparison.Ordinal);
    }
}
