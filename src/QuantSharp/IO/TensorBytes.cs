using TorchSharp;

namespace QuantSharp.IO;

/// <summary>
/// Moves bytes between files and the native storage of contiguous CPU tensors without per-element work.
/// <see cref="torch.Tensor.bytes"/> is a span over the tensor's memory but is limited to int.MaxValue bytes, so
/// larger tensors are visited through 1 GiB views (narrow of a flat contiguous tensor is itself contiguous).
/// </summary>
internal static class TensorBytes
{
    /// <summary>Well under int.MaxValue, the most a span can cover.</summary>
    public const long ChunkBytes = 1L << 30;

    public delegate void ChunkAction(Span<byte> chunk, long offsetInTensor);

    /// <summary>
    /// Calls <paramref name="action"/> on consecutive spans covering the tensor's bytes, each at most
    /// <paramref name="chunkBytes"/> (rounded down to whole elements; tests pass a small value to reach the chunked path).
    /// </summary>
    public static void ForEachChunk(torch.Tensor tensor, ChunkAction action, long chunkBytes = ChunkBytes)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new InvalidOperationException("TensorBytes needs a contiguous CPU tensor.");
        long elementSize = tensor.element_size();
        long count = tensor.NumberOfElements;
        if (count == 0) return;
        if (count * elementSize <= chunkBytes)
        {
            action(tensor.bytes, 0);
            return;
        }
        using var flat = tensor.flatten();
        long perChunk = Math.Max(1, chunkBytes / elementSize);
        for (long start = 0; start < count; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, count - start));
            action(part.bytes, start * elementSize);
        }
        GC.KeepAlive(tensor);
    }

    /// <summary>Copies bytes into a contiguous CPU tensor from its file, starting at absolute offset.</summary>
    public static void ReadInto(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, torch.Tensor tensor, string filePath, string name, long chunkBytes = ChunkBytes)
    {
        ForEachChunk(tensor, (chunk, at) => ReadExactly(handle, offset + at, chunk, filePath, name), chunkBytes);
    }

    /// <summary>
    /// Positional reads (no shared file position) so several threads may read one open file. A short read means the
    /// file shrank after its header was validated.
    /// </summary>
    public static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, Span<byte> destination, string filePath, string? name)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(handle, destination, offset);
            if (n <= 0) throw new InvalidFileException(filePath, $"file ended at offset {offset} while reading (changed since it was opened?)", name);
            destination = destination[n..];
            offset += n;
        }
    }
}
