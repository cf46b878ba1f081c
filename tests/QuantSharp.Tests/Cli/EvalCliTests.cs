using System.Text.Json;

namespace QuantSharp.Tests.Cli;

public class EvalCliTests
{
    [Fact]
    public void EvalWritesJsonWithThePerplexity()
    {
        using var dir = Fixtures.NewTempDir();
        string json = dir.File("out.json");
        var r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--data", Fixtures.EvalText, "--seq-len", "512",
            "--max-windows", "8", "--json", json, "--device", "cpu");
        Assert.True(r.ExitCode == 0, r.StdErr);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal(8, root.GetProperty("windows").GetInt32());
        Assert.Equal(8 * 512, root.GetProperty("tokens").GetInt64());
        double ppl = root.GetProperty("perplexity").GetDouble();
        Assert.InRange(ppl, 5, 200);
        Assert.True(root.GetProperty("seconds").GetDouble() > 0);
        Assert.Contains("perplexity", r.StdOut);
    }

    [Fact]
    public void CorruptShardGivesOneLineErrorNamingTheFile()
    {
        using var dir = ModelFolderWithoutWeights();
        byte[] bytes = File.ReadAllBytes(Path.Combine(Fixtures.MicroQwen3, "model.safetensors"));
        File.WriteAllBytes(dir.File("model.safetensors"), bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var r = CliRunner.Run("eval", "--model", dir.Path, "--data", Fixtures.EvalText, "--max-windows", "1", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("model.safetensors", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr);
    }

    [Fact]
    public void MissingShardNamedInTheIndexIsNamed()
    {
        using var dir = ModelFolderWithoutWeights();
        File.Copy(Path.Combine(Fixtures.MicroQwen3, "model.safetensors"), dir.File("model-00001-of-00002.safetensors"));
        File.WriteAllText(dir.File("model.safetensors.index.json"),
            "{\"metadata\": {}, \"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\", " +
            "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}");
        var r = CliRunner.Run("eval", "--model", dir.Path, "--data", Fixtures.EvalText, "--max-windows", "1", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("model-00002-of-00002.safetensors", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr);
    }

    [Fact]
    public void MissingDataFileIsNamed()
    {
        var r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--data", "/nonexistent/x.txt");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--data /nonexistent/x.txt", r.StdErr);
    }

    [Fact]
    public void CudaRequestWithoutCudaExplainsWhatWasLookedFor()
    {
        var r = CliRunner.Run("eval", "--model", Fixtures.MicroQwen3, "--data", Fixtures.EvalText, "--device", "cuda");
        if (r.ExitCode == 0) return; // a machine with CUDA: nothing to check here
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("QUANTSHARP_LIBTORCH", r.StdErr);
    }

    [Fact]
    public void InspectPrintsArchitectureAndParameters()
    {
        var r = CliRunner.Run("inspect", "--model", Fixtures.MicroQwen3);
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Contains("qwen3", r.StdOut);
        Assert.Contains("layers       4", r.StdOut);
        Assert.Contains("BF16", r.StdOut);
    }

    [Fact]
    public void GenerateContinuesThePrompt()
    {
        var r = CliRunner.Run("generate", "--model", Fixtures.MicroQwen3, "--prompt", "The President said", "--max-new-tokens", "8", "--device", "cpu");
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.StartsWith("The President said", r.StdOut);
        Assert.True(r.StdOut.Trim().Length > "The President said".Length);
    }

    /// <summary>A temporary folder holding micro-qwen3's config and tokenizer, for tests to add (broken) weights to.</summary>
    private static TempDir ModelFolderWithoutWeights()
    {
        var dir = Fixtures.NewTempDir();
        foreach (string f in new[] { "config.json", "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(Fixtures.MicroQwen3, f), dir.File(f));
        return dir;
    }
}
