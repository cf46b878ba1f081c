using System.Text;
using System.Text.Json;

namespace QuantSharp.IO;

/// <summary>
/// model.safetensors.index.json: which shard file holds each tensor. Read with <see cref="JsonDocument"/> and
/// enumerated property by property, because that keeps duplicate keys (which would otherwise mean one tensor mapped
/// to two shards with the last one winning silently).
/// </summary>
internal sealed class ShardIndex
{
    public const string FileName = "model.safetensors.index.json";

    /// <summary>Tensor name -> shard file name (plain name, in the index's folder), in index order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> WeightMap { get; }

    private ShardIndex(IReadOnlyList<KeyValuePair<string, string>> weightMap) => WeightMap = weightMap;

    public static ShardIndex Load(string indexPath)
    {
        byte[] bytes;
        try
        {
            long length = new FileInfo(indexPath).Length;
            if (length > SafetensorsHeader.MaxHeaderBytes)
                throw new InvalidFileException(indexPath, $"index is {length} bytes, larger than any plausible index");
            bytes = File.ReadAllBytes(indexPath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            throw new InvalidFileException(indexPath, $"cannot read shard index: {e.Message}", null, e);
        }

        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return FromJson(indexPath, doc.RootElement);
        }
        catch (JsonException e)
        {
            throw new InvalidFileException(indexPath, $"shard index is not valid JSON: {e.Message}", null, e);
        }
    }

    private static ShardIndex FromJson(string indexPath, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidFileException(indexPath, $"shard index is a JSON {root.ValueKind}, expected an object");
        if (!root.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
            throw new InvalidFileException(indexPath, "shard index has no 'weight_map' object");

        var entries = new List<KeyValuePair<string, string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty p in map.EnumerateObject())
        {
            if (!seen.Add(p.Name)) throw new InvalidFileException(indexPath, "weight_map lists this tensor more than once", p.Name);
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new InvalidFileException(indexPath, "weight_map value is not a shard file name", p.Name);
            string shard = p.Value.GetString()!;
            // A shard must be a sibling of the index: an absolute path or ".." would let an index read anywhere.
            if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or "..")
                throw new InvalidFileException(indexPath, $"weight_map names shard '{shard}', which is not a plain file name in the index's folder", p.Name);
            entries.Add(new(p.Name, shard));
        }
        if (entries.Count == 0) throw new InvalidFileException(indexPath, "weight_map is empty");
        return new ShardIndex(entries);
    }

    /// <summary>Writes an index in the layout transformers writes (metadata.total_size, then weight_map).</summary>
    public static void Write(string indexPath, long totalSize, IEnumerable<KeyValuePair<string, string>> weightMap)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", totalSize);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (name, shard) in weightMap) w.WriteString(name, shard);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        buffer.Write(Encoding.UTF8.GetBytes("\n"));
        AtomicFile.WriteAllBytes(indexPath, buffer.ToArray());
    }
}
