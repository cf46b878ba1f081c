using QuantSharp.IO.Hub;

namespace QuantSharp.Tests.IO.Hub;

/// <summary>Each failure is one QuantSharpException a user can act on: it names the model, file or URL.</summary>
public sealed class HubErrorTests
{
    private const string Repo = "test-org/micro-qwen3";

    [Fact]
    public void GatedModelWithoutTokenAsksForHfToken()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        server.RequiredToken = "hf_secret";

        var e = Assert.Throws<QuantSharpException>(() => HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home)));
        Assert.Contains($"model {Repo} is gated or private", e.Message);
        Assert.Contains("HF_TOKEN", e.Message);

        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home) with { Token = "hf_secret" });
        Assert.True(File.Exists(Path.Combine(snapshot, "model.safetensors")));
        Assert.Contains(server.Requests, r => r.Authorization == "Bearer hf_secret");
    }

    [Fact]
    public void WrongTokenSaysTheTokenHasNoAccess()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        server.RequiredToken = "hf_secret";
        var e = Assert.Throws<QuantSharpException>(() => HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home) with { Token = "hf_other" }));
        Assert.Contains("HF_TOKEN is set but has no access", e.Message);
    }

    [Fact]
    public void UnknownRepositoryAndRevisionAreNamed()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        var options = HubTestOptions.For(server, home);

        var repo = Assert.Throws<QuantSharpException>(() => HubSnapshot.Resolve("test-org/no-such-model", options));
        Assert.Contains("test-org/no-such-model: repository not found", repo.Message);

        var rev = Assert.Throws<QuantSharpException>(() => HubSnapshot.Resolve($"{Repo}@no-such-branch", options));
        Assert.Contains("revision 'no-such-branch' not found", rev.Message);
        Assert.Contains(Repo, rev.Message);
    }

    [Fact]
    public void OfflineWithoutCacheNamesTheRepoAndTheVariable()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        var e = Assert.Throws<QuantSharpException>(() => HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home) with { Offline = true }));
        Assert.Contains(Repo, e.Message);
        Assert.Contains("HF_HUB_OFFLINE=1", e.Message);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public void OfflineWithCacheUsesItWithoutAnyRequest()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        string online = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home));
        int before = server.Requests.Count;
        Assert.Equal(online, HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home) with { Offline = true }));
        Assert.Equal(before, server.Requests.Count);
    }

    [Fact]
    public void UnreachableHubWithoutCacheNamesTheUrlAndTheOfflineSwitch()
    {
        using var home = Fixtures.NewTempDir();
        string endpoint = HubTestOptions.UnreachableEndpoint();
        var e = Assert.Throws<HubNetworkException>(() => HubSnapshot.Resolve(Repo, HubTestOptions.For(null, home, endpoint)));
        Assert.Contains($"{endpoint}/api/models/{Repo}/revision/main", e.Message);
        Assert.Contains("HF_HUB_OFFLINE=1", e.Message);
    }
}
