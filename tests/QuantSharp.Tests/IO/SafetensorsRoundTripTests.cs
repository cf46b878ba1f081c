using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;
using QuantSharp.IO;
using TorchSharp;
using Xunit.Abstractions;

namespace QuantSharp.Tests.IO;

public sealed class SafetensorsRoundTripTests(ITestOutputHelper output)
{
    /// <summary>Values spanning negatives, fractions and zero, in the requested dtype.</summary>
    private static torch.Tensor Sample(torch.ScalarType type)
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.arange(-12, 12, torch.float64).reshape(2, 3, 4);
        var t = type switch
        {
            torch.ScalarType.Bool => x.gt(0),
            torch.ScalarType.Byte => (x + 12).to_type(type),
            torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64 => (x * 0.5).to_type(type),
            _ => (x * 7).to_type(type),
        };
        return t.MoveToOuterDisposeScope();
    }

    [Theory]
    [InlineData(torch.ScalarType.Float64, SafeDType.F64)]
    [InlineData(torch.ScalarType.Float32, SafeDType.F32)]
    [InlineData(torch.ScalarType.Float16, SafeDType.F16)]
    [InlineData(torch.ScalarType.BFloat16, SafeDType.BF16)]
    [InlineData(torch.ScalarType.Int64, SafeDType.I64)]
    [InlineData(torch.ScalarType.Int32, SafeDType.I32)]
    [InlineData(torch.ScalarType.Int16, SafeDType.I16)]
    [InlineData(torch.ScalarType.Int8, SafeDType.I8)]
    [InlineData(torch.ScalarType.Byte, SafeDType.U8)]
    [InlineData(torch.ScalarType.Bool, SafeDType.BOOL)]
    public void RoundTrip_PreservesValuesShapeDTypeAndMetadata(torch.ScalarType type, SafeDType expected)
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("t.safetensors");
        var original = Sample(type);
        var meta = new Dictionary<string, string> { ["purpose"] = "round-trip" };

        SafetensorsWriter.Write(path, [new("w", original)], meta);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["w"], file.Names);
        Assert.Equal(expected, file.GetInfo("w").DType);
        Assert.Equal(new long[] { 2, 3, 4 }, file.GetInfo("w").Shape);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("round-trip", file.Metadata["purpose"]);
        var back = file.Read("w");
        Assert.Equal(type, back.dtype);
        Assert.Equal(original.shape, back.shape);
        Assert.True(back.Equals(original), $"{type} values differ after the round trip");
    }

    [Fact]
    public void RoundTrip_ManyDTypesInOneFile_KeepsHeaderOrder()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("mixed.safetensors");
        torch.ScalarType[] types =
        [
            torch.ScalarType.Int16, torch.ScalarType.Float64, torch.ScalarType.Bool, torch.ScalarType.BFloat16,
            torch.ScalarType.Byte, torch.ScalarType.Float32, torch.ScalarType.Int64, torch.ScalarType.Float16,
            torch.ScalarType.Int8, torch.ScalarType.Int32,
        ];
        // Names deliberately not alphabetical, so header order is distinguishable from sorted order.
        var tensors = types.Select((t, i) => new KeyValuePair<string, torch.Tensor>($"z{9 - i}.{t}", Sample(t))).ToList();

        SafetensorsWriter.Write(path, tensors);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(tensors.Select(t => t.Key), file.Names);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, file.Metadata);
        foreach (var (name, t) in tensors)
        {
            var back = file.Read(name);
            Assert.Equal(t.dtype, back.dtype);
            Assert.True(back.Equals(t), name);
        }
    }

    [Theory]
    [InlineData(SafeDType.F8_E4M3)]
    [InlineData(SafeDType.F8_E5M2)]
    public void WriteRaw_Float8_ReadsBackAsUInt8RawBytes(SafeDType dtype)
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("f8.safetensors");
        byte[] data = Enumerable.Range(0, 15).Select(i => (byte)(i * 17 + 3)).ToArray();

        SafetensorsWriter.WriteRaw(path, [("q", dtype, [3, 5], data), ("empty", SafeDType.F32, [0], [])],
            new Dictionary<string, string> { ["scheme"] = "fp8" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(dtype, file.GetInfo("q").DType);
        Assert.Equal("fp8", file.Metadata["scheme"]);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(data, file.ReadBytes("q"));
        var t = file.Read("q");
        Assert.Equal(torch.ScalarType.Byte, t.dtype);
        Assert.Equal(new long[] { 3, 5 }, t.shape);
        Assert.Equal(data, t.bytes.ToArray());
        Assert.Equal(new long[] { 0 }, file.Read("empty").shape);
    }

    [Fact]
    public void WriteRaw_ByteCountNotMatchingShape_IsRejectedAndLeavesNoFile()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("bad.safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.WriteRaw(path, [("q", SafeDType.F16, [4], new byte[7])]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void RoundTrip_ScalarEmptyAndNonContiguousTensors()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("odd.safetensors");
        var scalar = torch.tensor(3.5f);
        var empty = torch.zeros(0, 4);
        var transposed = torch.arange(12, torch.int32).reshape(3, 4).t();
        Assert.False(transposed.is_contiguous());

        SafetensorsWriter.Write(path, [new("scalar", scalar), new("empty", empty), new("transposed", transposed)]);

        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.GetInfo("scalar").Shape);
        Assert.Equal(3.5f, file.Read("scalar").item<float>());
        Assert.Equal(new long[] { 0, 4 }, file.Read("empty").shape);
        Assert.Equal(0, file.GetInfo("empty").ByteCount);
        var t = file.Read("transposed");
        Assert.Equal(new long[] { 4, 3 }, t.shape);
        Assert.True(t.Equals(transposed));
        Assert.Equal(4, t[0, 1].item<int>()); // row 0 of the transpose is column 0 of the original: 0, 4, 8
    }

    [Fact]
    public void RoundTrip_NamesAndMetadataWithCharactersJsonMustEscape()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("names.safetensors");
        string[] names = ["ünïcode.权重", "quote\"and\\slash", "a+b<c>&'d", "tab\tnewline\n", ""];
        var meta = new Dictionary<string, string> { ["note"] = "\"quoted\" ü\n", ["format"] = "pt" };

        SafetensorsWriter.Write(path, names.Select((n, i) => new KeyValuePair<string, torch.Tensor>(n, torch.full(2, i))), meta);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(names, file.Names);
        Assert.Equal(meta, file.Metadata);
        for (int i = 0; i < names.Length; i++) Assert.Equal(i, file.Read(names[i])[1].item<long>());
    }

    [Fact]
    public void WrittenFile_HasTheLayoutOtherReadersRequire()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("layout.safetensors");
        SafetensorsWriter.Write(path, [new("a", torch.ones(3, torch.float16)), new("b", torch.ones(5, torch.float64)), new("c", torch.ones(1, torch.int8))]);
        AssertReferenceLayout(path, expectedHeaderLength: null);
    }

    /// <summary>
    /// The reference reader demands: offsets contiguous from 0 with no holes, data ending exactly at end of file.
    /// We also promise a header padded to a multiple of 8.
    /// </summary>
    private static void AssertReferenceLayout(string path, long? expectedHeaderLength)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        if (expectedHeaderLength is not null) Assert.Equal(expectedHeaderLength.Value, n);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var ranges = doc.RootElement.EnumerateObject()
            .Where(p => p.Name != "__metadata__")
            .Select(p => (Begin: p.Value.GetProperty("data_offsets")[0].GetInt64(), End: p.Value.GetProperty("data_offsets")[1].GetInt64()))
            .OrderBy(r => r.Begin).ToList();
        long expectedBegin = 0;
        foreach (var (begin, end) in ranges)
        {
            Assert.Equal(expectedBegin, begin);
            expectedBegin = end;
        }
        Assert.Equal(bytes.LongLength, 8 + n + expectedBegin);
    }

    [Fact]
    public void Read_64MBTensor_IsFastAndExact()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("big.safetensors");
        var big = torch.randn(4096, 4096); // 64 MiB of float32
        SafetensorsWriter.Write(path, [new("big", big), new("tail", torch.ones(2))]);
        // At 64 MiB the writer keeps its reserved 256 KiB header instead of compacting: check that path too.
        AssertReferenceLayout(path, expectedHeaderLength: 256 * 1024);

        using var file = SafetensorsFile.Open(path);
        var sw = Stopwatch.StartNew();
        var back = file.Read("big");
        sw.Stop();
        output.WriteLine($"read 64 MiB tensor in {sw.Elapsed.TotalMilliseconds:F1} ms");
        Assert.True(back.Equals(big));
        // A per-element copy through TorchSharp would take minutes; a bulk read takes milliseconds. The bound is
        // loose because other builds share this machine.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"reading 64 MiB took {sw.Elapsed}");
    }

    private static IEnumerable<KeyValuePair<string, torch.Tensor>> ThrowsAfterOne()
    {
        using var t = torch.ones(1000);
        yield return new("first", t);
        throw new InvalidOperationException("producer failed");
    }

    [Fact]
    public void Write_WhenEnumerableThrows_LeavesNoFile()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("atomic.safetensors");
        var e = Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, ThrowsAfterOne()));
        Assert.Equal("producer failed", e.Message);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(dir.Path)); // no .tmp left behind either
    }

    [Fact]
    public void Write_WhenEnumerableThrows_KeepsThePreviousFileIntact()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("existing.safetensors");
        SafetensorsWriter.Write(path, [new("old", torch.full(4, 7.0f))]);
        byte[] before = File.ReadAllBytes(path);

        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, ThrowsAfterOne()));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Write_DuplicateOrReservedName_IsRejectedAndLeavesNoFile()
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("dup.safetensors");
        var t = torch.ones(2);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("w", t), new("w", t)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("__metadata__", t)]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    /// <summary>Each tensor is disposed as soon as the writer moves on: the writer must have copied it already.</summary>
    private static IEnumerable<KeyValuePair<string, torch.Tensor>> DisposeAfterYield(int count, int length)
    {
        for (int i = 0; i < count; i++)
        {
            using var t = torch.full(length, (float)i);
            yield return new($"t{i}", t);
        }
    }

    [Fact]
    public void Write_ConsumesEachTensorWhenYielded()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("lazy.safetensors");
        SafetensorsWriter.Write(path, DisposeAfterYield(5, 100));
        using var file = SafetensorsFile.Open(path);
        using var scope = torch.NewDisposeScope();
        for (int i = 0; i < 5; i++)
            Assert.True(file.Read($"t{i}").Equals(torch.full(100, (float)i)));
    }
}
