using System.Text.Json;
using QuantSharp.IO;
using TorchSharp;

namespace QuantSharp.Tests.IO;

public sealed class SafetensorsShardedWriterTests
{
    private static IEnumerable<KeyValuePair<string, torch.Tensor>> Layers(int count, int rows)
    {
        for (int i = 0; i < count; i++)
        {
            // Disposed when the writer asks for the next one: the writer must not keep references.
            using var t = torch.arange(rows * 64, torch.float32).reshape(rows, 64).add(i * 1000);
            yield return new($"layer.{i}.weight", t);
        }
    }

    [Fact]
    public void WriteSharded_SmallLimit_ProducesShardsIndexAndRoundTrips()
    {
        using var dir = Fixtures.NewTempDir();
        // Six 16 KiB tensors with a 40 KiB limit: two per shard, so three shards.
        IReadOnlyList<string> shards = SafetensorsWriter.WriteSharded(dir.Path, Layers(6, 64), 40 * 1024,
            new Dictionary<string, string> { ["quant"] = "none" });

        Assert.Equal(Enumerable.Range(1, 3).Select(i => dir.File($"model-{i:D5}-of-00003.safetensors")), shards);
        string indexPath = dir.File("model.safetensors.index.json");
        Assert.True(File.Exists(indexPath));
        Assert.False(File.Exists(dir.File("model.safetensors")));
        Assert.Equal(shards.Append(indexPath).Order(), Directory.GetFiles(dir.Path).Order()); // no temp files left

        using (var index = JsonDocument.Parse(File.ReadAllBytes(indexPath)))
        {
            Assert.Equal(6 * 64 * 64 * 4, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            var map = index.RootElement.GetProperty("weight_map");
            Assert.Equal("model-00001-of-00003.safetensors", map.GetProperty("layer.1.weight").GetString());
            Assert.Equal("model-00002-of-00003.safetensors", map.GetProperty("layer.2.weight").GetString());
            Assert.Equal("model-00003-of-00003.safetensors", map.GetProperty("layer.5.weight").GetString());
        }

        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(shards, ckpt.ShardFiles);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => $"layer.{i}.weight"), ckpt.Names);
        using var scope = torch.NewDisposeScope();
        for (int i = 0; i < 6; i++)
        {
            var expected = torch.arange(64 * 64, torch.float32).reshape(64, 64).add(i * 1000);
            Assert.True(ckpt.Read($"layer.{i}.weight").Equals(expected));
        }
        using var first = SafetensorsFile.Open(shards[0]);
        Assert.Equal("pt", first.Metadata["format"]);
        Assert.Equal("none", first.Metadata["quant"]);
    }

    [Fact]
    public void WriteSharded_TensorLargerThanLimit_GetsItsOwnShard()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        KeyValuePair<string, torch.Tensor>[] tensors =
        [
            new("a", torch.ones(100)),        // 400 B
            new("huge", torch.ones(10_000)),  // 40 KB, over the 1 KB limit
            new("b", torch.ones(100)),
            new("c", torch.ones(100)),
        ];
        var shards = SafetensorsWriter.WriteSharded(dir.Path, tensors, 1024);

        Assert.Equal(3, shards.Count);
        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(shards[0], ckpt.ShardOf("a"));
        Assert.Equal(shards[1], ckpt.ShardOf("huge"));
        Assert.Equal(shards[2], ckpt.ShardOf("b"));
        Assert.Equal(shards[2], ckpt.ShardOf("c"));
        using var hugeShard = SafetensorsFile.Open(shards[1]);
        Assert.Equal(["huge"], hugeShard.Names);
    }

    [Fact]
    public void WriteSharded_OneShard_WritesModelSafetensorsWithoutIndex()
    {
        using var dir = Fixtures.NewTempDir();
        var shards = SafetensorsWriter.WriteSharded(dir.Path, Layers(3, 4), 1 << 20);

        Assert.Equal([dir.File("model.safetensors")], shards);
        Assert.Equal([dir.File("model.safetensors")], Directory.GetFiles(dir.Path));
        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Null(ckpt.IndexPath);
        Assert.Equal(3, ckpt.Names.Count);
    }

    [Fact]
    public void WriteSharded_SwitchingLayout_RemovesTheStaleEntryPoint()
    {
        using var dir = Fixtures.NewTempDir();
        SafetensorsWriter.WriteSharded(dir.Path, Layers(4, 64), 20 * 1024);
        Assert.True(File.Exists(dir.File("model.safetensors.index.json")));

        // Now one shard: a leftover index would describe the old weights.
        SafetensorsWriter.WriteSharded(dir.Path, Layers(2, 4), 1 << 20);
        Assert.False(File.Exists(dir.File("model.safetensors.index.json")));
        using (var single = SafetensorsCheckpoint.Open(dir.Path))
            Assert.Equal(2, single.Names.Count);

        // And back: a leftover model.safetensors would be opened in preference to the new index.
        SafetensorsWriter.WriteSharded(dir.Path, Layers(4, 64), 20 * 1024);
        Assert.False(File.Exists(dir.File("model.safetensors")));
        using var sharded = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(4, sharded.Names.Count);
        Assert.NotNull(sharded.IndexPath);
    }

    private static IEnumerable<KeyValuePair<string, torch.Tensor>> FailsAfter(int count)
    {
        foreach (var kv in Layers(count, 64)) yield return kv;
        throw new InvalidOperationException("producer failed");
    }

    [Fact]
    public void WriteSharded_WhenEnumerableThrows_LeavesNothingBehind()
    {
        using var dir = Fixtures.NewTempDir();
        // 16 KiB tensors, 20 KiB limit: several shards are complete before the failure.
        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.WriteSharded(dir.Path, FailsAfter(3), 20 * 1024));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void WriteSharded_TruncatedShard_IsReportedWithTheShardName()
    {
        using var dir = Fixtures.NewTempDir();
        var shards = SafetensorsWriter.WriteSharded(dir.Path, Layers(4, 64), 20 * 1024);
        using (var fs = new FileStream(shards[2], FileMode.Open, FileAccess.Write))
            fs.SetLength(fs.Length - 100);

        SafetensorsTestHelpers.AssertInvalid(() => SafetensorsTestHelpers.OpenCheckpointAndDispose(dir.Path),
            Path.GetFileName(shards[2]), "layer.2.weight");
    }
}
