using QuantSharp.IO;
using TorchSharp;

namespace QuantSharp.Tests.IO;

/// <summary>
/// Tensors over 1 GiB are copied through views of at most 1 GiB; a small chunk size reaches that path here without
/// gigabytes of test data.
/// </summary>
public sealed class TensorBytesTests
{
    [Theory]
    [InlineData(64)]   // whole elements per chunk
    [InlineData(30)]   // not a multiple of the 8-byte element: rounds down to 3 elements
    [InlineData(1)]    // smaller than one element: still makes progress
    public void ChunkedReadAndWrite_MatchWholeCopy(long chunkBytes)
    {
        using var dir = Fixtures.NewTempDir();
        using var scope = torch.NewDisposeScope();
        var source = torch.randn(7, 143, torch.float64); // 1001 elements: the last chunk is partial
        string path = dir.File("chunks.bin");

        using (var fs = File.Create(path))
        {
            long expectedAt = 0;
            TensorBytes.ForEachChunk(source, (chunk, at) =>
            {
                Assert.Equal(expectedAt, at);
                Assert.True(chunk.Length <= Math.Max(8, chunkBytes));
                fs.Write(chunk);
                expectedAt += chunk.Length;
            }, chunkBytes);
            Assert.Equal(source.NumberOfElements * 8, expectedAt);
        }
        Assert.Equal(source.bytes.ToArray(), File.ReadAllBytes(path));

        var back = torch.empty(7, 143, torch.float64);
        using (var handle = File.OpenHandle(path))
            TensorBytes.ReadInto(handle, 0, back, path, "t", chunkBytes);
        Assert.True(back.Equals(source));
    }
}
