using QuantSharp.IO;
using QuantSharp.IO.Hub;

namespace QuantSharp.Tests.IO.Hub;

/// <summary>Downloads from a fake Hub into a temporary cache: layout, reuse, resume, verification.</summary>
public sealed class HubDownloadTests
{
    private const string Repo = "test-org/micro-qwen3";

    [Fact]
    public void FreshDownloadWritesHuggingFaceHubCacheLayout()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        var files = FakeHubServer.MicroQwen3Files();
        string commit = server.CommitOf("main");

        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home));

        string repoDir = Path.Combine(home.Path, "hub", "models--test-org--micro-qwen3");
        Assert.Equal(Path.Combine(repoDir, "snapshots", commit), snapshot);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repoDir, "refs", "main"))); // no trailing newline, as Python writes it
        string[] expected = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
        Assert.Equal(expected, Directory.GetFileSystemEntries(snapshot).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (string name in expected)
        {
            // LFS files are stored under their sha256, the others under their git blob id: the Hub's ETags.
            string etag = FakeHubServer.IsLfs(name) ? FakeHubServer.Sha256(files[name]) : FakeHubServer.GitBlobId(files[name]);
            var link = new FileInfo(Path.Combine(snapshot, name));
            Assert.Equal(Path.Combine("..", "..", "blobs", etag), link.LinkTarget);
            Assert.Equal(files[name], File.ReadAllBytes(Path.Combine(repoDir, "blobs", etag)));
        }
        Assert.Equal(expected.Length, Directory.GetFiles(Path.Combine(repoDir, "blobs")).Length); // no .incomplete left
        Assert.Equal(0, server.CountRequests(r => r.Path.EndsWith(".bin", StringComparison.Ordinal) || r.Path.Contains("reference")));
        using var checkpoint = SafetensorsCheckpoint.Open(snapshot);
        Assert.NotEmpty(checkpoint.Names);
    }

    [Fact]
    public void SecondResolveReusesTheCacheAndSurvivesAnUnreachableHub()
    {
        using var home = Fixtures.NewTempDir();
        string first;
        using (var server = FakeHubServer.WithMicroQwen3(Repo))
        {
            var options = HubTestOptions.For(server, home);
            first = HubSnapshot.Resolve(Repo, options);
            int before = server.Requests.Count;
            Assert.Equal(first, HubSnapshot.Resolve(Repo, options));
            // Only the revision lookup ("main" may have moved); no file is fetched or even HEADed again.
            Assert.Equal(1, server.Requests.Count - before);
            Assert.Contains("/api/models/", server.Requests.Last().Path);

            // A pinned commit whose snapshot is complete needs no request at all.
            before = server.Requests.Count;
            Assert.Equal(first, HubSnapshot.Resolve($"{Repo}@{server.CommitOf("main")}", options));
            Assert.Equal(before, server.Requests.Count);
        }
        // The server is gone: the snapshot cached for "main" is used, as huggingface_hub does.
        Assert.Equal(first, HubSnapshot.Resolve(Repo, HubTestOptions.For(null, home, HubTestOptions.UnreachableEndpoint())));
    }

    [Fact]
    public void ConnectionCutMidFileIsResumedWithRange()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        server.CutNextDownloadHalfway("model.safetensors");
        byte[] weights = FakeHubServer.MicroQwen3Files()["model.safetensors"];

        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home));

        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors")));
        var cdn = server.Requests.Where(r => r.Path.StartsWith("/cdn-lfs/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, cdn.Count);
        Assert.Null(cdn[0].Range);
        Assert.Equal($"bytes={weights.Length / 2}-", cdn[1].Range);
    }

    [Fact]
    public void PartialFileFromAnEarlierRunIsContinued()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        byte[] weights = FakeHubServer.MicroQwen3Files()["model.safetensors"];
        string blobs = Path.Combine(home.Path, "hub", "models--test-org--micro-qwen3", "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, FakeHubServer.Sha256(weights) + ".incomplete"), weights.AsSpan(0, 1 << 20).ToArray());

        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home));

        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors")));
        var cdn = Assert.Single(server.Requests, r => r.Path.StartsWith("/cdn-lfs/", StringComparison.Ordinal));
        Assert.Equal($"bytes={1 << 20}-", cdn.Range);
    }

    [Fact]
    public void Sha256MismatchDeletesTheDownloadAndNamesTheFile()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        server.CorruptFiles.Add("model.safetensors");

        var e = Assert.Throws<QuantSharpException>(() => HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home)));

        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("sha256", e.Message);
        string blobs = Path.Combine(home.Path, "hub", "models--test-org--micro-qwen3", "blobs");
        Assert.DoesNotContain(Directory.GetFiles(blobs), f => f.Contains(FakeHubServer.Sha256(FakeHubServer.MicroQwen3Files()["model.safetensors"])));
    }

    [Fact]
    public void RevisionPinningFetchesThatRevisionAndRecordsItsRef()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        var v1Files = FakeHubServer.MicroQwen3Files();
        v1Files["config.json"] = [.. v1Files["config.json"], (byte)'\n'];
        string v1 = server.AddRevision("v1.0", v1Files);
        var options = HubTestOptions.For(server, home);

        string snapshot = HubSnapshot.Resolve($"{Repo}@v1.0", options);

        Assert.EndsWith(v1, snapshot);
        Assert.Equal(v1Files["config.json"], File.ReadAllBytes(Path.Combine(snapshot, "config.json")));
        string refs = Path.Combine(home.Path, "hub", "models--test-org--micro-qwen3", "refs");
        Assert.Equal(v1, File.ReadAllText(Path.Combine(refs, "v1.0")));
        Assert.False(File.Exists(Path.Combine(refs, "main")));

        // The weights are the same blob as main's: fetching main links it instead of downloading it again.
        int weightDownloads = server.CountRequests(r => r.Path.StartsWith("/cdn-lfs/", StringComparison.Ordinal));
        string main = HubSnapshot.Resolve($"{Repo}@{server.CommitOf("main")}", options);
        Assert.NotEqual(snapshot, main);
        Assert.Equal(weightDownloads, server.CountRequests(r => r.Path.StartsWith("/cdn-lfs/", StringComparison.Ordinal)));
        Assert.False(File.Exists(Path.Combine(refs, server.CommitOf("main")))); // a commit needs no ref
    }

    [Fact]
    public void ExtraFilePatternsFetchWhatIsAskedFor()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home) with { ExtraFiles = ["*.bin"] });
        Assert.True(File.Exists(Path.Combine(snapshot, "pytorch_model.bin")));
        Assert.False(File.Exists(Path.Combine(snapshot, "reference_logits.safetensors")));
    }

    [Fact]
    public void ProgressReportsEveryByteOfTheDownload()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        var reports = new List<HubProgress>();
        HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home) with { Progress = reports.Add });
        long total = FakeHubServer.MicroQwen3Files()
            .Where(f => f.Key is "config.json" or "generation_config.json" or "model.safetensors" or "tokenizer.json" or "tokenizer_config.json")
            .Sum(f => (long)f.Value.Length);
        Assert.Equal(total, reports[^1].Total);
        Assert.Equal(total, reports[^1].TotalDone);
        Assert.Contains(reports, p => p.File == "model.safetensors" && p.FileDone < p.FileTotal);
    }

    [Fact]
    public void ShardedModelFetchesTheIndexAndTheShardsItNames()
    {
        using var home = Fixtures.NewTempDir();
        using var server = new FakeHubServer(Repo);
        var files = FakeHubServer.MicroQwen3Files();
        byte[] weights = files["model.safetensors"];
        files.Remove("model.safetensors");
        files["model-00001-of-00001.safetensors"] = weights;
        files["consolidated.safetensors"] = weights; // a second copy some repositories carry; not named by the index
        string[] names;
        using (var ckpt = SafetensorsCheckpoint.Open(Fixtures.MicroQwen3)) names = [.. ckpt.Names];
        files["model.safetensors.index.json"] = System.Text.Encoding.UTF8.GetBytes(
            "{\"metadata\": {}, \"weight_map\": {" + string.Join(", ", names.Select(n => $"\"{n}\": \"model-00001-of-00001.safetensors\"")) + "}}");
        server.AddRevision("main", files);

        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home));

        Assert.True(File.Exists(Path.Combine(snapshot, "model.safetensors.index.json")));
        Assert.False(File.Exists(Path.Combine(snapshot, "consolidated.safetensors")));
        using var checkpoint = SafetensorsCheckpoint.Open(snapshot);
        Assert.Equal(names.Length, checkpoint.Names.Count);
        Assert.EndsWith("model-00001-of-00001.safetensors", Assert.Single(checkpoint.ShardFiles));
    }

    [Fact]
    public void ServiceUnavailableIsRetried()
    {
        using var home = Fixtures.NewTempDir();
        using var server = FakeHubServer.WithMicroQwen3(Repo);
        server.ServiceUnavailableCount = 2; // MaxAttempts is 3 in the test options
        string snapshot = HubSnapshot.Resolve(Repo, HubTestOptions.For(server, home));
        Assert.True(File.Exists(Path.Combine(snapshot, "model.safetensors")));
    }
}
