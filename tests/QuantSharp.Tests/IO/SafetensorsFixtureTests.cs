using System.Buffers.Binary;
using System.Text.Json;
using QuantSharp.IO;
using TorchSharp;

namespace QuantSharp.Tests.IO;

/// <summary>Reads checkpoints written by PyTorch/transformers, not by us.</summary>
public sealed class SafetensorsFixtureTests
{
    private static string MicroQwen3File => Path.Combine(Fixtures.MicroQwen3, "model.safetensors");

    [Fact]
    public void MicroQwen3_HeaderListsExpectedTensors()
    {
        using var file = SafetensorsFile.Open(MicroQwen3File);
        Assert.Equal(46, file.Names.Count);
        Assert.Equal("model.embed_tokens.weight", file.Names[0]);
        Assert.True(file.Contains("model.layers.0.mlp.down_proj.weight"));
        Assert.False(file.Contains("lm_head.bias"));
        Assert.Equal("pt", file.Metadata["format"]);

        SafeTensorInfo embed = file.GetInfo("model.embed_tokens.weight");
        Assert.Equal(SafeDType.BF16, embed.DType);
        Assert.Equal(new long[] { 8192, 256 }, embed.Shape);
        Assert.Equal(8192L * 256 * 2, embed.ByteCount);
        Assert.Equal(file.DataStart, embed.Begin); // first in the buffer, offsets made absolute
    }

    [Fact]
    public void MicroQwen3_ReadMatchesBytesDecodedIndependently()
    {
        using var file = SafetensorsFile.Open(MicroQwen3File);
        using var scope = torch.NewDisposeScope();
        SafeTensorInfo info = file.GetInfo("model.embed_tokens.weight");
        var t = file.Read("model.embed_tokens.weight");
        Assert.Equal(torch.ScalarType.BFloat16, t.dtype);
        Assert.Equal(new long[] { 8192, 256 }, t.shape);
        Assert.True(torch.isfinite(t).all().item<bool>());

        // Decode a few bf16 values straight from the file (bf16 is the top half of a float32) and compare.
        byte[] raw = new byte[info.ByteCount];
        using (var fs = File.OpenRead(MicroQwen3File))
        {
            fs.Position = info.Begin;
            fs.ReadExactly(raw);
        }
        Assert.Equal(raw, file.ReadBytes("model.embed_tokens.weight"));
        var asFloat = t.to_type(torch.ScalarType.Float32);
        foreach ((long row, long col) in new[] { (0L, 0L), (1L, 7L), (8191L, 255L), (4000L, 128L) })
        {
            int at = (int)((row * 256 + col) * 2);
            float expected = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(at)) << 16);
            Assert.True(float.IsFinite(expected));
            Assert.Equal(expected, asFloat[row, col].item<float>());
        }
        Assert.NotEqual(0f, asFloat.abs().sum().item<float>()); // not an all-zero read
    }

    [Fact]
    public void MicroQwen3_UnknownTensor_NamesFileAndTensor()
    {
        using var file = SafetensorsFile.Open(MicroQwen3File);
        SafetensorsTestHelpers.AssertInvalid(() => file.GetInfo("model.nope.weight"), "model.safetensors", "model.nope.weight");
        SafetensorsTestHelpers.AssertInvalid(() => file.Read("model.nope.weight").Dispose(), "model.safetensors", "model.nope.weight");
    }

    [Fact]
    public void MicroQwen3_CheckpointOpensFolderOrFile()
    {
        using var byFolder = SafetensorsCheckpoint.Open(Fixtures.MicroQwen3);
        using var byFile = SafetensorsCheckpoint.Open(MicroQwen3File);
        using var file = SafetensorsFile.Open(MicroQwen3File);
        foreach (var c in new[] { byFolder, byFile })
        {
            Assert.Equal([Path.GetFullPath(MicroQwen3File)], c.ShardFiles);
            Assert.Null(c.IndexPath);
            Assert.Equal(file.Names, c.Names);
            Assert.Equal(file.FileLength - file.DataStart, c.TotalBytes);
            Assert.Equal(c.ShardFiles[0], c.ShardOf("model.norm.weight"));
        }
        using var scope = torch.NewDisposeScope();
        Assert.True(byFolder.Read("model.norm.weight").Equals(file.Read("model.norm.weight")));
    }

    [ModelFact("tiny-llama")]
    public void TinyLlama_ShardedViaIndex_EveryTensorReadable()
    {
        string dir = Fixtures.Model("tiny-llama")!;
        string indexPath = Path.Combine(dir, "model.safetensors.index.json");
        using var index = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);

        using var ckpt = SafetensorsCheckpoint.Open(dir);
        Assert.Equal(Path.GetFullPath(indexPath), ckpt.IndexPath);
        Assert.Equal(
            Enumerable.Range(1, 4).Select(i => Path.GetFullPath(Path.Combine(dir, $"model-{i:D5}-of-00004.safetensors"))),
            ckpt.ShardFiles);
        Assert.Equal(weightMap.Keys.Order(), ckpt.Names.Order());
        Assert.Equal(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), ckpt.TotalBytes);

        foreach (string name in ckpt.Names)
        {
            using var scope = torch.NewDisposeScope();
            Assert.Equal(weightMap[name], Path.GetFileName(ckpt.ShardOf(name)));
            SafeTensorInfo info = ckpt.GetInfo(name);
            var t = ckpt.Read(name);
            Assert.Equal(SafeDTypes.ToScalarType(info.DType), t.dtype);
            Assert.Equal(info.Shape, t.shape);
            Assert.True(torch.isfinite(t).all().item<bool>(), name);
        }
        using (var s = torch.NewDisposeScope())
            Assert.Equal(new long[] { 8192, 512 }, ckpt.Read("model.embed_tokens.weight").shape);
        SafetensorsTestHelpers.AssertInvalid(() => ckpt.GetInfo("missing.weight"), "model.safetensors.index.json", "missing.weight");
    }
}
