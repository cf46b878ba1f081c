using System.Text.Json;

namespace QuantSharp.Tests.Cli;

/// <summary>`quantize` with Intel Neural Compressor's weight-only types and HQQ (micro-qwen3, a few windows).</summary>
public class IncQuantizeCliTests
{
    private static readonly string[] Small = ["--eval-seq-len", "128", "--eval-max-windows", "4", "--device", "cpu", "--quiet"];

    [Fact]
    public void HqqAsymmetricGroup64RunsWithoutCalibrationAndReportsItsOptions()
    {
        using var dir = Fixtures.NewTempDir();
        string json = dir.File("q.json");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "int", "--w-bits", "4", "--w-group-size", "64", "--asym",
            "--method", "hqq", "--eval", Fixtures.EvalText, "--json", json, .. Small]);
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var config = doc.RootElement.GetProperty("config");
        Assert.Equal("hqq", config.GetProperty("method").GetString());
        Assert.True(config.GetProperty("hqq").GetProperty("quant_zero").GetBoolean());
        double before = doc.RootElement.GetProperty("perplexity_before").GetDouble(), after = doc.RootElement.GetProperty("perplexity_after").GetDouble();
        Assert.InRange(after / before, 0.95, 1.3);
    }

    [Fact]
    public void Nf4WithDoubleQuantGroupDimZeroAndIncSpellings()
    {
        using var dir = Fixtures.NewTempDir();
        string json = dir.File("q.json");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "nf4", "--w-bits", "4", "--w-group-size", "64",
            "--use_double_quant", "--double_quant_group_size", "128", "--group_dim", "0", "--eval", Fixtures.EvalText, "--skip-baseline", "--json", json, .. Small]);
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var config = doc.RootElement.GetProperty("config");
        Assert.Equal("nf4", config.GetProperty("format").GetString());
        Assert.Equal(128, config.GetProperty("double_quant").GetProperty("group_size").GetInt32());
        Assert.False(config.GetProperty("double_quant").GetProperty("symmetric").GetBoolean());
        Assert.Equal(0, config.GetProperty("group_dim").GetInt32());
    }

    [Theory]
    [InlineData("--method hqq --w-bits 4", "--asym")]
    [InlineData("--w-bits 0", "--w-bits 0")]
    [InlineData("--w-bits 9", "--w-bits 9")]
    [InlineData("--w-bits 1", "--asym")]
    [InlineData("--format nf4 --w-bits 3", "--w-bits 3")]
    [InlineData("--use-full-range --asym", "--use-full-range")]
    [InlineData("--group-dim 2", "--group-dim 2")]
    [InlineData("--double-quant --double-quant-bits 9", "--double-quant-bits 9")]
    [InlineData("--method hqq --asym --save OUT --export gptq", "HQQ")]
    public void BadIncFlagsExitTwoNamingTheFlag(string flags, string expected)
    {
        using var dir = Fixtures.NewTempDir();
        var args = flags.Replace("OUT", dir.File("out")).Split(' ');
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, .. args, "--eval", Fixtures.EvalText, .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, r.StdErr);
    }
}
