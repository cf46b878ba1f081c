namespace QuantSharp.Tests.IO.Hub;

/// <summary>The real CLI with --model org/name against a fake Hub, configured only through the environment.</summary>
public sealed class HubCliTests
{
    private const string Repo = "test-org/micro-qwen3";

    private static Dictionary<string, string?> Environment(TempDir home, string endpoint) => new()
    {
        ["HF_HOME"] = home.Path,
        ["HF_ENDPOINT"] = endpoint,
        ["HF_HUB_CACHE"] = null,
        ["HF_TOKEN"] = null,
        ["HF_HUB_OFFLINE"] = null,
    };

    [Fact]
    public void EvalAndInspectResolveAHubIdThroughTheCache()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        var env = Environment(home, server.Endpoint);

        var eval = CliRunner.RunWithEnvironment(env, "eval", "--model", Repo, "--data", Fixtures.EvalText, "--seq-len", "128",
            "--max-windows", "1", "--device", "cpu");
        Assert.True(eval.ExitCode == 0, eval.StdErr);
        Assert.Contains("perplexity", eval.StdOut);
        Assert.Contains("download test-org/micro-qwen3: model.safetensors", eval.StdErr); // progress goes to stderr
        Assert.True(Directory.Exists(Path.Combine(home.Path, "hub", "models--test-org--micro-qwen3", "snapshots", server.CommitOf("main"))));

        env["HF_HUB_OFFLINE"] = "1";
        int before = server.Requests.Count;
        var inspect = CliRunner.RunWithEnvironment(env, "inspect", "--model", Repo);
        Assert.True(inspect.ExitCode == 0, inspect.StdErr);
        Assert.Contains("qwen3", inspect.StdOut);
        Assert.Contains(server.CommitOf("main"), inspect.StdOut); // the snapshot folder is the model path
        Assert.Equal(before, server.Requests.Count);
    }

    [Fact]
    public void GatedModelIsOneLineAndExitCode2()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        server.RequiredToken = "hf_secret";
        var r = CliRunner.RunWithEnvironment(Environment(home, server.Endpoint), "inspect", "--model", Repo);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith($"error: model {Repo} is gated or private", r.StdErr);
        Assert.Contains("HF_TOKEN", r.StdErr);
        Assert.Single(r.StdErr.Trim().Split('\n'));
    }

    [Fact]
    public void OfflineWithoutCacheIsOneLineAndExitCode2()
    {
        using var home = Fixtures.NewTempDir();
        var env = Environment(home, HubTestOptions.UnreachableEndpoint());
        env["HF_HUB_OFFLINE"] = "1";
        var r = CliRunner.RunWithEnvironment(env, "inspect", "--model", Repo);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"model {Repo} is not in the Hugging Face cache", r.StdErr);
        Assert.Single(r.StdErr.Trim().Split('\n'));
    }

    [Fact]
    public void MissingLocalFolderThatIsNoHubIdKeepsItsMessage()
    {
        var r = CliRunner.Run("inspect", "--model", "/nonexistent/model");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--model /nonexistent/model: folder not found", r.StdErr);
    }
}
