using System.Buffers.Binary;
using QuantSharp.IO;
using TorchSharp;
using static QuantSharp.Tests.IO.SafetensorsTestHelpers;

namespace QuantSharp.Tests.IO;

/// <summary>Every malformed input is an InvalidFileException naming the file (and the tensor where there is one).</summary>
public sealed class SafetensorsCorruptFileTests
{
    private static readonly string Good = Entry("w", "F32", "[2,2]", 0, 16);

    [Fact]
    public void FileShorterThanLengthField()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        AssertInvalid(() => OpenAndDispose(path), "short.safetensors");
    }

    [Fact]
    public void HeaderLengthBeyondFile()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("claims-more.safetensors");
        var bytes = new byte[8 + 20];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        File.WriteAllBytes(path, bytes);
        var e = AssertInvalid(() => OpenAndDispose(path), "claims-more.safetensors");
        Assert.Contains("1000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AbsurdHeaderLength_IsRejectedBeforeAllocating()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("absurd.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue - 3); // would overflow a signed length too
        File.WriteAllBytes(path, bytes);
        AssertInvalid(() => OpenAndDispose(path), "absurd.safetensors");
    }

    [Theory]
    [InlineData("{\"w\": {\"dtype\": \"F32\",")]              // cut off
    [InlineData("not json at all")]
    [InlineData("[1, 2, 3]")]                                 // valid JSON, not an object
    [InlineData("")]                                          // empty header
    [InlineData("{} {}")]                                     // two values
    [InlineData("{\"__metadata__\": {\"format\": 1}}")]      // metadata values must be strings
    [InlineData("{\"__metadata__\": [\"pt\"]}")]
    public void BadJson(string header)
    {
        using var dir = Fixtures.NewTempDir();
        string path = Craft(dir, "bad-json.safetensors", header, 0);
        AssertInvalid(() => OpenAndDispose(path), "bad-json.safetensors");
    }

    [Theory]
    [InlineData("{\"shape\":[2],\"data_offsets\":[0,8]}", "dtype")]
    [InlineData("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", "shape")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2]}", "data_offsets")]
    [InlineData("{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}", "F128")]
    [InlineData("{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}", "f32")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}", "negative")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}", "shape")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}", "begin after end")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}", "data_offsets")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}", "needs 8")]       // byte count mismatch
    [InlineData("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}", "too large")]
    [InlineData("\"F32\"", "not a JSON object")]
    public void BadEntry_NamesTensorAndProblem(string entry, string problem)
    {
        using var dir = Fixtures.NewTempDir();
        string path = Craft(dir, "bad-entry.safetensors", $"{{{Good},\"layer.bad\":{entry}}}", 64);
        var e = AssertInvalid(() => OpenAndDispose(path), "bad-entry.safetensors", "layer.bad");
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ByteCountMismatch()
    {
        using var dir = Fixtures.NewTempDir();
        string path = Craft(dir, "mismatch.safetensors", $"{{{Entry("m", "BF16", "[3,3]", 0, 16)}}}", 16);
        var e = AssertInvalid(() => OpenAndDispose(path), "mismatch.safetensors", "m");
        Assert.Contains("18", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedFile_EndBeyondDataBuffer()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("truncated.safetensors");
        using (var scope = torch.NewDisposeScope())
            SafetensorsWriter.Write(path, [new("a", torch.ones(10)), new("b.last", torch.ones(10))]);
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Write))
            fs.SetLength(fs.Length - 4);
        var e = AssertInvalid(() => OpenAndDispose(path), "truncated.safetensors", "b.last");
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TensorClaimingMoreThanTheFileHolds_IsRejectedWithoutAllocating()
    {
        using var dir = Fixtures.NewTempDir();
        // A 1 TB tensor in a 100-byte file: must fail on the size check, not on an allocation.
        string path = Craft(dir, "claims-tb.safetensors", $"{{{Entry("huge", "U8", "[1099511627776]", 0, 1099511627776)}}}", 100);
        AssertInvalid(() => OpenAndDispose(path), "claims-tb.safetensors", "huge");
    }

    [Fact]
    public void OverlappingRanges()
    {
        using var dir = Fixtures.NewTempDir();
        string header = $"{{{Entry("first", "F32", "[4]", 0, 16)},{Entry("second", "F32", "[4]", 8, 24)}}}";
        string path = Craft(dir, "overlap.safetensors", header, 24);
        var e = AssertInvalid(() => OpenAndDispose(path), "overlap.safetensors", "second");
        Assert.Contains("first", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyTensorsAtTheSameOffset_AreNotOverlaps()
    {
        using var dir = Fixtures.NewTempDir();
        string header = $"{{{Entry("a", "F32", "[4]", 0, 16)},{Entry("e1", "F32", "[0]", 8, 8)},{Entry("e2", "F32", "[0,3]", 8, 8)}}}";
        string path = Craft(dir, "empties.safetensors", header, 16);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(3, f.Names.Count);
    }

    [Fact]
    public void DuplicateNames()
    {
        using var dir = Fixtures.NewTempDir();
        string header = $"{{{Entry("dup.weight", "F32", "[2]", 0, 8)},{Entry("dup.weight", "F32", "[2]", 8, 16)}}}";
        string path = Craft(dir, "duplicate.safetensors", header, 16);
        AssertInvalid(() => OpenAndDispose(path), "duplicate.safetensors", "dup.weight");
    }

    [Fact]
    public void MissingFile()
    {
        using var dir = Fixtures.NewTempDir();
        AssertInvalid(() => OpenAndDispose(dir.File("absent.safetensors")), "absent.safetensors");
        AssertInvalid(() => OpenCheckpointAndDispose(dir.File("absent-folder")), "absent-folder");
        AssertInvalid(() => OpenCheckpointAndDispose(dir.Path), Path.GetFileName(dir.Path)); // folder with no weights
    }

    /// <summary>A valid two-shard checkpoint whose index the test then replaces.</summary>
    private static void WriteTwoShards(TempDir dir)
    {
        using var scope = torch.NewDisposeScope();
        SafetensorsWriter.WriteSharded(dir.Path, [new("a", torch.ones(256)), new("b", torch.ones(256))], 1024);
        Assert.True(File.Exists(dir.File("model-00002-of-00002.safetensors")));
    }

    [Fact]
    public void Index_MissingShard_NamesShardAndIndex()
    {
        using var dir = Fixtures.NewTempDir();
        WriteTwoShards(dir);
        File.Delete(dir.File("model-00002-of-00002.safetensors"));
        var e = AssertInvalid(() => OpenCheckpointAndDispose(dir.Path), "model.safetensors.index.json");
        Assert.Contains("model-00002-of-00002.safetensors", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"weight_map\": {\"a\": ")]
    [InlineData("[]")]
    [InlineData("{\"metadata\": {}}")]
    [InlineData("{\"weight_map\": {}}")]
    [InlineData("{\"weight_map\": {\"a\": 3}}")]
    [InlineData("{\"weight_map\": {\"a\": \"../model-00001-of-00002.safetensors\"}}")]
    [InlineData("{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"a\": \"model-00002-of-00002.safetensors\"}}")]
    public void Index_BadJsonOrShape(string index)
    {
        using var dir = Fixtures.NewTempDir();
        WriteTwoShards(dir);
        File.WriteAllText(dir.File("model.safetensors.index.json"), index);
        AssertInvalid(() => OpenCheckpointAndDispose(dir.Path), "model.safetensors.index.json");
    }

    [Fact]
    public void Index_TensorAbsentFromItsShard_NamesTensorAndShard()
    {
        using var dir = Fixtures.NewTempDir();
        WriteTwoShards(dir);
        File.WriteAllText(dir.File("model.safetensors.index.json"),
            "{\"metadata\":{\"total_size\":2048},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\"}}");
        var e = AssertInvalid(() => OpenCheckpointAndDispose(dir.Path), "model-00001-of-00002.safetensors", "b");
        Assert.Contains("model.safetensors.index.json", e.Message, StringComparison.Ordinal);
    }
}
