using QuantSharp.IO.Hub;

namespace QuantSharp.Tests.IO.Hub;

public sealed class HubOptionsTests
{
    [Theory]
    [InlineData("org/name", "org/name", "main")]
    [InlineData("meta-llama/Llama-3.1-8B@v1.0", "meta-llama/Llama-3.1-8B", "v1.0")]
    [InlineData("Qwen/Qwen3-0.6B@0123456789abcdef0123456789abcdef01234567", "Qwen/Qwen3-0.6B", "0123456789abcdef0123456789abcdef01234567")]
    [InlineData("org/name@refs/pr/1", "org/name", "refs/pr/1")]
    public void ParsesHubIds(string text, string repo, string revision)
    {
        Assert.True(HubModelId.TryParse(text, out var id));
        Assert.Equal(repo, id.RepoId);
        Assert.Equal(revision, id.Revision);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("./models/x")]
    [InlineData("/abs/path")]
    [InlineData("a/b/c")]
    [InlineData("org/../x")]
    [InlineData("org/na--me")]
    [InlineData("org/name@")]
    [InlineData("models\\x")]
    [InlineData("org/name@../../etc")]
    [InlineData("org/name@/abs")]
    public void RejectsWhatIsNotAHubId(string text) => Assert.False(HubModelId.TryParse(text, out _));

    [Fact]
    public void ExistingFolderIsReturnedAsItIs()
    {
        // A folder named like an id wins over the Hub: local paths keep working exactly as before.
        using var dir = Fixtures.NewTempDir();
        Directory.CreateDirectory(dir.File("org/name"));
        string path = Path.Combine(dir.Path, "org", "name");
        Assert.Equal(path, HubSnapshot.Resolve(path, new HubOptions { Endpoint = "http://127.0.0.1:1", Offline = true }));
    }

    [Fact]
    public void EnvironmentFollowsHuggingFaceHub()
    {
        using var dir = Fixtures.NewTempDir();
        var env = new Dictionary<string, string?> { ["HF_HOME"] = dir.Path, ["HF_ENDPOINT"] = "http://mirror.local/", ["HF_HUB_OFFLINE"] = "true" };
        var o = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal(Path.Combine(dir.Path, "hub"), o.CacheDir);
        Assert.Equal("http://mirror.local", o.Endpoint);
        Assert.True(o.Offline);
        Assert.Null(o.Token);

        File.WriteAllText(dir.File("token"), "hf_stored\n"); // what `hf auth login` leaves in HF_HOME
        Assert.Equal("hf_stored", HubOptions.FromEnvironment(k => env.GetValueOrDefault(k)).Token);

        env["HF_TOKEN"] = "hf_env";
        env["HF_HUB_CACHE"] = dir.File("elsewhere");
        env["HF_HUB_OFFLINE"] = "0";
        o = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal("hf_env", o.Token);
        Assert.Equal(dir.File("elsewhere"), o.CacheDir);
        Assert.False(o.Offline);
        Assert.Equal(HubOptions.DefaultEndpoint, HubOptions.FromEnvironment(_ => null).Endpoint);
    }
}
