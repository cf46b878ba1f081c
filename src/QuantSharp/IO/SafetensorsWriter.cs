using TorchSharp;

namespace QuantSharp.IO;

/// <summary>
/// Writes safetensors files readable by the reference implementation and transformers. Every write goes to a
/// temporary name and is renamed into place when complete, so a failure (including the caller's enumerable throwing)
/// never leaves a half file under the real name. Tensors are consumed lazily and their bytes copied to disk as each
/// one is yielded, so a producer may dispose a tensor as soon as the enumerator moves past it.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes one file; __metadata__ is {"format":"pt"} plus <paramref name="metadata"/> (which may override it).</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        using var writer = new SafetensorsStreamWriter(path);
        foreach (var (name, tensor) in tensors) writer.Add(name, tensor);
        writer.Commit(metadata);
    }

    /// <summary>Writes tensors given as raw little-endian bytes (F8 and anything torch cannot hold).</summary>
    public static void WriteRaw(string path, IEnumerable<(string Name, SafeDType DType, long[] Shape, byte[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        using var writer = new SafetensorsStreamWriter(path);
        foreach (var (name, dtype, shape, data) in tensors) writer.Add(name, dtype, shape, data);
        writer.Commit(metadata);
    }

    /// <summary>
    /// Writes a checkpoint folder in transformers' layout. Tensors fill a shard until the next one would take it past
    /// <paramref name="maxShardBytes"/> (a tensor larger than the limit gets a shard to itself). With one shard the
    /// result is model.safetensors and no index; otherwise model-0000i-of-0000N.safetensors plus
    /// model.safetensors.index.json, written last. Returns the shard files' full paths in order.
    /// <para>
    /// N is unknown until the enumerable ends, so shards are completed under temporary names and renamed at the end.
    /// A stale entry point of the other layout (model.safetensors vs. the index) is removed afterwards, since a loader
    /// would otherwise open it instead of what was just written. Other files in the folder are left alone.
    /// </para>
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(string directory, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        string folder = Path.GetFullPath(directory);
        Directory.CreateDirectory(folder);

        var parts = new List<(string PartPath, string[] Names, long Bytes)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        SafetensorsStreamWriter? current = null;
        try
        {
            foreach (var (name, tensor) in tensors)
            {
                ArgumentNullException.ThrowIfNull(tensor);
                if (!seen.Add(name)) throw new ArgumentException($"tensor '{name}' is written twice.", nameof(tensors));
                long bytes = tensor.NumberOfElements * tensor.element_size();
                if (current is not null && current.Count > 0 && current.DataBytes + bytes > maxShardBytes)
                {
                    parts.Add(Finish(current, metadata));
                    current = null;
                }
                current ??= new SafetensorsStreamWriter(PartPath(folder, parts.Count + 1));
                current.Add(name, tensor);
            }
            // An empty enumerable still yields a valid (empty) model.safetensors.
            current ??= new SafetensorsStreamWriter(PartPath(folder, 1));
            parts.Add(Finish(current, metadata));
            current = null;

            return Publish(folder, parts);
        }
        catch
        {
            current?.Dispose();
            foreach (var part in parts) AtomicFile.TryDelete(part.PartPath);
            throw;
        }
    }

    private static (string, string[], long) Finish(SafetensorsStreamWriter writer, IReadOnlyDictionary<string, string>? metadata)
    {
        using (writer)
        {
            writer.Commit(metadata);
            return (writer.FinalPath, writer.Names.ToArray(), writer.DataBytes);
        }
    }

    private static string PartPath(string folder, int index) => Path.Combine(folder, $"model-{index:D5}.safetensors.partial");

    public static string ShardFileName(int index, int count) => $"model-{index:D5}-of-{count:D5}.safetensors";

    private static IReadOnlyList<string> Publish(string folder, List<(string PartPath, string[] Names, long Bytes)> parts)
    {
        string single = Path.Combine(folder, SafetensorsCheckpoint.SingleFileName);
        string index = Path.Combine(folder, ShardIndex.FileName);
        if (parts.Count == 1)
        {
            File.Move(parts[0].PartPath, single, overwrite: true);
            AtomicFile.TryDelete(index);
            return [single];
        }

        var shardPaths = new List<string>();
        var weightMap = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < parts.Count; i++)
        {
            string shardName = ShardFileName(i + 1, parts.Count);
            string shardPath = Path.Combine(folder, shardName);
            File.Move(parts[i].PartPath, shardPath, overwrite: true);
            shardPaths.Add(shardPath);
            weightMap.AddRange(parts[i].Names.Select(n => new KeyValuePair<string, string>(n, shardName)));
        }
        ShardIndex.Write(index, parts.Sum(p => p.Bytes), weightMap);
        AtomicFile.TryDelete(single);
        return shardPaths;
    }
}
