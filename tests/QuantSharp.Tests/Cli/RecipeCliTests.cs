using System.Text.Json;

namespace QuantSharp.Tests.Cli;

public class RecipeCliTests
{
    private static readonly string[] Small =
    [
        "--num-sequences", "4", "--seq-len", "128", "--eval-seq-len", "128", "--eval-max-windows", "4", "--device", "cpu",
    ];

    [Fact]
    public void RecipeRunSavesQuantSharpFormatThatEvalScoresIdentically()
    {
        using var dir = Fixtures.NewTempDir();
        string recipe = dir.File("r.json");
        File.WriteAllText(recipe, """
            {"rtn": {"global": {"bits": 4, "group_size": 64, "use_sym": false},
                     "local": {"down_proj": {"bits": 8}, "no_such_layer": {"bits": 2}}}}
            """);
        string outDir = Path.Combine(dir.Path, "q"), json = dir.File("q.json");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--recipe", recipe, "--eval", Fixtures.EvalText,
            "--skip-baseline", "--save", outDir, "--json", json, .. Small]);
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        Assert.Contains("local rule 'no_such_layer' (rtn) matches no linear", r.StdErr);
        Assert.True(File.Exists(Path.Combine(outDir, "qconfig.json")));
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        double after = doc.RootElement.GetProperty("perplexity_after").GetDouble();
        Assert.Equal(8, doc.RootElement.GetProperty("recipe").GetProperty("rtn").GetProperty("local").GetProperty("down_proj").GetProperty("bits").GetInt32());

        string evalJson = dir.File("eval.json");
        var e = CliRunner.Run(["eval", "--model", outDir, "--data", Fixtures.EvalText, "--seq-len", "128", "--max-windows", "4", "--device", "cpu",
            "--json", evalJson]);
        Assert.True(e.ExitCode == 0, e.StdErr + e.StdOut);
        using var evalDoc = JsonDocument.Parse(File.ReadAllText(evalJson));
        double reloaded = evalDoc.RootElement.GetProperty("perplexity").GetDouble();
        Assert.InRange(reloaded / after, 1 - 1e-6, 1 + 1e-6);
    }

    [Theory]
    [InlineData("""{"rtn": {"global": {"bits": 9}}}""", "bits 9: dtype int supports")]
    [InlineData("""{"rtn": {"global": {"bits": 4, "group_size": 100}}}""", "group_size 100 does not divide the 256 input columns of tensor 'model.layers.0.self_attn.q_proj.weight'")]
    [InlineData("""{"smoothquant": {}}""", "unknown algorithm 'smoothquant'")]
    [InlineData("""{"gptq": {"global": {"damp": 0.1}}}""", "unknown key 'damp' for gptq")]
    public void BadRecipesExitTwoNamingTheFileAndKey(string json, string expected)
    {
        using var dir = Fixtures.NewTempDir();
        string recipe = dir.File("bad.json");
        File.WriteAllText(recipe, json);
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--recipe", recipe, "--skip-baseline", .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("bad.json", r.StdErr);
        Assert.Contains(expected, r.StdErr);
    }

    [Fact]
    public void RecipeAndWeightFlagsConflict()
    {
        using var dir = Fixtures.NewTempDir();
        string recipe = dir.File("r.json");
        File.WriteAllText(recipe, """{"rtn": {"bits": 4}}""");
        var r = CliRunner.Run(["quantize", "--model", Fixtures.MicroQwen3, "--recipe", recipe, "--w-bits", "3", .. Small]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--w-bits conflicts with --recipe", r.StdErr);
    }
}
