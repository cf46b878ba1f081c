using System.Text.Json;

namespace QuantSharp.Tests.Cli;

public class QuantizeCliTests
{
    private static readonly string[] Small =
    [
        "--num-sequences", "4", "--seq-len", "128", "--eval-seq-len", "128", "--eval-max-windows", "4", "--device", "cpu",
    ];

    [Fact]
    public void FpQuantSpellingsWorkAndJsonHasTheReport()
    {
        using var dir = Fixtures.NewTempDir();
        string json = dir.File("q.json");
        var r = CliRunner.Run([
            "quantize", "--model_name_or_path", Fixtures.MicroQwen3, "--format", "nvfp", "--w_bits", "4", "--a_bits", "4",
            "--transform_class", "hadamard", "--hadamard_group_size", "16", "--gptq", "--w_observer", "mse",
            "--quantization_order", "activation", "--calib", Fixtures.CalibText, "--eval", Fixtures.EvalText, "--json", json, .. Small]);
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal("gptq", root.GetProperty("config").GetProperty("method").GetString());
        Assert.Equal("hadamard", root.GetProperty("config").GetProperty("transform").GetString());
        Assert.True(root.GetProperty("config").GetProperty("act_order").GetBoolean());
        Assert.Equal(28, root.GetProperty("layers").GetArrayLength());
        double before = root.GetProperty("perplexity_before").GetDouble(), after = root.GetProperty("perplexity_after").GetDouble();
        Assert.InRange(after / before, 0.95, 1.5);
        Assert.True(root.GetProperty("peak_memory_bytes").GetInt64() > 0);
        Assert.True(root.GetProperty("quantize_seconds").GetDouble() > 0);
    }

    [Fact]
    public void ConflictingNvfpGroupSizeIsAWarningNamingWhatIsUsed()
    {
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "nvfp", "--w-bits", "4", "--w-group-size", "32",
            "--eval", Fixtures.EvalText, "--skip-baseline", .. Small]);
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Contains("--w-group-size 32 conflicts with format nvfp; using its fixed group size 16", r.StdErr);
    }

    [Fact]
    public void GroupSizeThatDoesNotDivideIsAnError()
    {
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "int", "--w-bits", "4", "--w-group-size", "96", .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--w-group-size 96 does not divide", r.StdErr);
    }

    [Fact]
    public void UnknownTransformListsTheValidNames()
    {
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--transform", "walsh", .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("walsh", r.StdErr);
        Assert.Contains("hadamard", r.StdErr);
    }

    [Fact]
    public void CalibrationFileShorterThanOneWindowIsAnError()
    {
        using var dir = Fixtures.NewTempDir();
        File.WriteAllText(dir.File("short.txt"), "far too short");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--gptq", "--calib", dir.File("short.txt"), .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("shorter than one calibration window", r.StdErr);
    }

    [Fact]
    public void SavedPseudoquantModelEvaluatesWithEval()
    {
        using var dir = Fixtures.NewTempDir();
        string saved = Path.Combine(dir.Path, "m");
        var q = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--format", "mxfp", "--w-bits", "4", "--a-bits", "4",
            "--transform", "hadamard", "--hadamard-group-size", "32", "--eval", Fixtures.EvalText, "--skip-baseline", "--save", saved, .. Small]);
        Assert.True(q.ExitCode == 0, q.StdErr);
        string line = q.StdOut.Split('\n').First(l => l.StartsWith("perplexity after", StringComparison.Ordinal));
        double inMemory = double.Parse(line.Split(':')[1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var e = CliRunner.Run("eval", "--model", saved, "--data", Fixtures.EvalText, "--seq-len", "128", "--max-windows", "4", "--device", "cpu");
        Assert.True(e.ExitCode == 0, e.StdErr);
        double reloaded = double.Parse(e.StdOut.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(reloaded / inMemory - 1) < 1e-3, $"eval of export {reloaded} vs in-memory {inMemory}");
    }
}
