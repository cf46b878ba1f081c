using System.Text;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Tests.IO.Gguf;

/// <summary>Every malformed GGUF is an InvalidFileException naming the file, and the tensor where one is at fault.</summary>
public sealed class GgufCorruptFileTests
{
    /// <summary>A hand-written header: magic, version, the given tensors (name, dims, type, offset), no metadata.</summary>
    private static byte[] Header(uint version, params (string Name, long[] Dims, uint Type, ulong Offset)[] tensors)
    {
        using var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(version);
        w.Write((ulong)tensors.Length);
        w.Write(0UL);
        foreach (var (name, dims, type, offset) in tensors)
        {
            w.Write((ulong)name.Length);
            w.Write(Encoding.UTF8.GetBytes(name));
            w.Write((uint)dims.Length);
            foreach (long d in dims) w.Write((ulong)d);
            w.Write(type);
            w.Write(offset);
        }
        while (ms.Length % 32 != 0) w.Write((byte)0);
        return ms.ToArray();
    }

    private static InvalidFileException AssertInvalid(byte[] bytes, string fileName, string? tensor = null, string? contains = null)
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File(fileName);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidFileException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(fileName, e.Message, StringComparison.Ordinal);
        if (tensor is not null)
        {
            Assert.Equal(tensor, e.TensorName);
            Assert.Contains($"'{tensor}'", e.Message, StringComparison.Ordinal);
        }
        if (contains is not null) Assert.Contains(contains, e.Message, StringComparison.Ordinal);
        return e;
    }

    [Fact]
    public void BadMagic() =>
        AssertInvalid(Encoding.ASCII.GetBytes("GGML\x03\0\0\0").Concat(new byte[16]).ToArray(), "magic.gguf", contains: "bad magic");

    [Fact]
    public void UnsupportedVersion() => AssertInvalid(Header(7), "v7.gguf", contains: "version 7");

    [Fact]
    public void TooShortForMagic() => AssertInvalid([0x47, 0x47], "tiny.gguf", contains: "too short");

    [Fact]
    public void TruncatedInsideMetadata()
    {
        var w = new QuantSharp.Export.Gguf.GgufWriter();
        w.Add("general.name", GgufValue.Of("a fairly long model name"));
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        AssertInvalid(ms.ToArray()[..40], "cut.gguf", contains: "truncated");
    }

    [Fact]
    public void TruncatedDataSection_NamesTheTensor()
    {
        byte[] header = Header(3, ("blk.0.attn_q.weight", [32, 2], (uint)GgmlType.Q8_0, 0));
        // Two Q8_0 blocks need 68 bytes; give 40.
        AssertInvalid(header.Concat(new byte[40]).ToArray(), "short-data.gguf", "blk.0.attn_q.weight", "68 bytes");
    }

    [Fact]
    public void TensorBytesRunningIntoTheNextTensor_NameTheTensorWhoseSizeDisagrees()
    {
        // 'a' is Q8_0 [64] = 68 bytes, but 'b' starts at 64: the layout and a's type/shape disagree.
        byte[] header = Header(3, ("a", [64], (uint)GgmlType.Q8_0, 0), ("b", [32], (uint)GgmlType.Q8_0, 64));
        AssertInvalid(header.Concat(new byte[256]).ToArray(), "overlap.gguf", "a", "runs into tensor 'b'");
    }

    [Fact]
    public void RowNotWholeBlocks_NamesTheTensor()
    {
        byte[] header = Header(3, ("odd", [30], (uint)GgmlType.Q8_0, 0));
        AssertInvalid(header.Concat(new byte[64]).ToArray(), "odd.gguf", "odd", "block of 32 values");
    }

    [Fact]
    public void UnknownTensorType_NamesTheTensor()
    {
        byte[] header = Header(3, ("mystery", [32], 99, 0));
        AssertInvalid(header.Concat(new byte[64]).ToArray(), "type.gguf", "mystery", "type #99");
    }

    [Fact]
    public void MisalignedOffset_NamesTheTensor()
    {
        byte[] header = Header(3, ("w", [32], (uint)GgmlType.F32, 4));
        AssertInvalid(header.Concat(new byte[256]).ToArray(), "align.gguf", "w", "alignment");
    }

    [Fact]
    public void AbsurdArrayCount_IsRejectedBeforeAllocating()
    {
        using var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(3u);
        w.Write(0UL);
        w.Write(1UL);
        w.Write(1UL);
        w.Write((byte)'k');
        w.Write((uint)GgufValueType.Array);
        w.Write((uint)GgufValueType.String);
        w.Write(ulong.MaxValue / 2);
        AssertInvalid(ms.ToArray(), "array.gguf", contains: "elements");
    }

    [Fact]
    public void MissingFile() => Assert.Throws<InvalidFileException>(() => GgufFile.Open("/nonexistent/model.gguf"));
}
