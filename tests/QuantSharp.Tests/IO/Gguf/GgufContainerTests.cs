using QuantSharp.Export.Gguf;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Tests.IO.Gguf;

/// <summary>The GGUF v3 container as written and read back: exact header bytes, typed metadata, alignment.</summary>
public sealed class GgufContainerTests
{
    [Fact]
    public void HeaderBytes_FollowTheSpecification()
    {
        var w = new GgufWriter();
        w.Add("a", GgufValue.Of(5u));
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        byte[] b = ms.ToArray();
        byte[] expected =
        [
            (byte)'G', (byte)'G', (byte)'U', (byte)'F', 3, 0, 0, 0,  // magic, version 3
            0, 0, 0, 0, 0, 0, 0, 0,                                  // tensor count
            1, 0, 0, 0, 0, 0, 0, 0,                                  // metadata count
            1, 0, 0, 0, 0, 0, 0, 0, (byte)'a',                       // key: uint64 length + bytes
            4, 0, 0, 0, 5, 0, 0, 0,                                  // type UINT32, value 5
        ];
        Assert.Equal(expected, b[..expected.Length]);
        Assert.Equal(0, b.Length % 32);
        Assert.All(b[expected.Length..], x => Assert.Equal(0, x));
    }

    [Fact]
    public void MetadataOfEveryType_AndTensors_RoundTrip()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("all.gguf");
        var w = new GgufWriter();
        w.Add("u8", new GgufValue(GgufValueType.UInt8, (byte)200));
        w.Add("i8", new GgufValue(GgufValueType.Int8, (sbyte)-5));
        w.Add("u16", new GgufValue(GgufValueType.UInt16, (ushort)65000));
        w.Add("i16", new GgufValue(GgufValueType.Int16, (short)-300));
        w.Add("u32", GgufValue.Of(4_000_000_000u));
        w.Add("i32", GgufValue.Of(-7));
        w.Add("f32", GgufValue.Of(1.5f));
        w.Add("bool", GgufValue.Of(true));
        w.Add("str", GgufValue.Of("héllo"));
        w.Add("u64", GgufValue.Of(ulong.MaxValue));
        w.Add("i64", new GgufValue(GgufValueType.Int64, long.MinValue));
        w.Add("f64", new GgufValue(GgufValueType.Float64, Math.PI));
        w.Add("strs", GgufValue.Strings(["a", "", "Ġb c"]));
        w.Add("ints", GgufValue.Int32s([1, -2, 3]));
        w.Add("floats", GgufValue.Float32s([0.25f]));
        byte[] t1 = Enumerable.Range(0, 34).Select(i => (byte)i).ToArray();
        byte[] t2 = Enumerable.Range(0, 3 * 4).Select(i => (byte)(100 + i)).ToArray();
        w.AddTensor("q8", [32], GgmlType.Q8_0, () => t1);
        w.AddTensor("norm", [3], GgmlType.F32, () => t2);
        w.Write(path);

        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Version);
        Assert.Equal(new[] { "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "u64", "i64", "f64", "strs", "ints", "floats" }, f.MetadataKeys);
        Assert.Equal((byte)200, f.Metadata["u8"].Value);
        Assert.Equal((sbyte)-5, f.Metadata["i8"].Value);
        Assert.Equal((ushort)65000, f.Metadata["u16"].Value);
        Assert.Equal((short)-300, f.Metadata["i16"].Value);
        Assert.Equal(4_000_000_000L, f.RequireInteger("u32"));
        Assert.Equal(-7L, f.RequireInteger("i32"));
        Assert.Equal(1.5, f.OptionalReal("f32"));
        Assert.Equal(true, f.Metadata["bool"].Value);
        Assert.Equal("héllo", f.RequireString("str"));
        Assert.Equal(ulong.MaxValue, f.Metadata["u64"].Value);
        Assert.Equal(long.MinValue, f.Metadata["i64"].Value);
        Assert.Equal(Math.PI, f.OptionalReal("f64"));
        Assert.Equal(new[] { "a", "", "Ġb c" }, f.RequireArray<string>("strs", GgufValueType.String));
        Assert.Equal(new[] { 1, -2, 3 }, f.RequireArray<int>("ints", GgufValueType.Int32));
        Assert.Equal(new[] { 0.25f }, f.RequireArray<float>("floats", GgufValueType.Float32));

        Assert.Equal(new[] { "q8", "norm" }, f.Tensors.Select(t => t.Name));
        Assert.Equal(0, f.DataStart % 32);
        Assert.All(f.Tensors, t => Assert.Equal(0, t.Offset % 32));
        Assert.Equal(64, f.GetInfo("norm").Offset); // 34 bytes of q8 padded to 64
        Assert.Equal(t1, f.ReadBytes("q8"));
        Assert.Equal(t2, f.ReadBytes("norm"));
        Assert.Equal(new long[] { 3 }, f.GetInfo("norm").TorchShape);
    }

    [Fact]
    public void TensorDims_AreWrittenInGgmlOrder()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("dims.gguf");
        var w = new GgufWriter();
        w.AddTensor("w", [3, 64], GgmlType.Q8_0, () => new byte[3 * 2 * 34]);
        w.Write(path);
        using var f = GgufFile.Open(path);
        Assert.Equal(new long[] { 64, 3 }, f.GetInfo("w").Dims);   // ne0 = row length
        Assert.Equal(new long[] { 3, 64 }, f.GetInfo("w").TorchShape);
        Assert.Equal(3 * 2 * 34, f.GetInfo("w").ByteCount);
    }

    [Fact]
    public void Writer_RefusesBytesThatDisagreeWithTypeAndShape_AndLeavesNoFile()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("bad.gguf");
        var w = new GgufWriter();
        w.AddTensor("w", [32], GgmlType.Q4_0, () => new byte[17]);
        var e = Assert.Throws<InvalidOperationException>(() => w.Write(path));
        Assert.Contains("'w'", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.EnumerateFiles(dir.Path));
    }

    [Fact]
    public void AnUnalignedCustomAlignment_IsWrittenAsGeneralAlignment()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("a64.gguf");
        var w = new GgufWriter(64);
        w.AddTensor("a", [32], GgmlType.Q8_0, () => new byte[34]);
        w.AddTensor("b", [32], GgmlType.Q8_0, () => new byte[34]);
        w.Write(path);
        using var f = GgufFile.Open(path);
        Assert.Equal(64u, f.Alignment);
        Assert.Equal(64, f.GetInfo("b").Offset);
        Assert.Equal(0, f.DataStart % 64);
    }
}
