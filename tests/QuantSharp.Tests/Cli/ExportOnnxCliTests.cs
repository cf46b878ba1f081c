namespace QuantSharp.Tests.Cli;

public sealed class ExportOnnxCliTests
{
    [Fact]
    public void ExportOnnx_WritesTheFileAndReportsBitsPerWeight()
    {
        using var dir = Fixtures.NewTempDir();
        string onnx = dir.File("micro.onnx");
        var r = CliRunner.Run("export-onnx", "--model", Fixtures.MicroQwen3, "--bits", "4", "--block-size", "64", "--asym", "--out", onnx);
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Contains("int4-b64-asym", r.StdOut, StringComparison.Ordinal);
        Assert.True(new FileInfo(onnx).Length > 0);
        Assert.False(File.Exists(onnx + ".tmp"));
    }

    [Theory]
    [InlineData("--bits 3", "--bits", "3", "--block-size", "128")]
    [InlineData("--block-size 48", "--bits", "4", "--block-size", "48")]
    [InlineData("--block-size 512", "--bits", "8", "--block-size", "512")] // a power of two wider than the 256 hidden columns
    public void BadOptions_ExitTwoWithOneLineNamingTheFlag_AndWriteNothing(string expected, params string[] flags)
    {
        using var dir = Fixtures.NewTempDir();
        string onnx = dir.File("x.onnx");
        var r = CliRunner.Run(["export-onnx", "--model", Fixtures.MicroQwen3, .. flags, "--out", onnx]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, r.StdErr, StringComparison.Ordinal);
        Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void MissingModel_ExitsTwoNamingTheFolder()
    {
        using var dir = Fixtures.NewTempDir();
        string missing = dir.File("no-such-model");
        var r = CliRunner.Run("export-onnx", "--model", missing, "--out", dir.File("x.onnx"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--model " + missing, r.StdErr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
