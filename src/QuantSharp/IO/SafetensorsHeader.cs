using System.Text.Json;

namespace QuantSharp.IO;

/// <summary>
/// Parses and validates a safetensors JSON header. Uses <see cref="Utf8JsonReader"/> rather than deserialization
/// because System.Text.Json's object binding keeps the last of duplicate keys silently, and a duplicated tensor name
/// means two readers may disagree about which bytes a weight is.
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>Largest header accepted (the reference implementation's limit), checked before allocating it.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    public sealed record Parsed(IReadOnlyList<SafeTensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata);

    /// <param name="filePath">Named in every error.</param>
    /// <param name="json">The header bytes (may end in padding spaces).</param>
    /// <param name="dataStart">Absolute offset of the data buffer (8 + header length).</param>
    /// <param name="dataLength">Bytes actually present in the data buffer, from the real file length.</param>
    public static Parsed Parse(string filePath, ReadOnlySpan<byte> json, long dataStart, long dataLength)
    {
        var ctx = new Context(filePath, dataStart, dataLength);
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            ParseRoot(ref reader, ctx);
        }
        catch (JsonException e)
        {
            throw new InvalidFileException(filePath, $"header is not valid JSON: {e.Message}", null, e);
        }
        catch (InvalidOperationException e)
        {
            // GetString() throws this for strings that are not valid UTF-8.
            throw new InvalidFileException(filePath, $"header is not valid UTF-8 JSON: {e.Message}", null, e);
        }
        CheckOverlaps(ctx);
        return new Parsed(ctx.Tensors, ctx.Metadata);
    }

    private sealed class Context(string filePath, long dataStart, long dataLength)
    {
        public string FilePath { get; } = filePath;
        public long DataStart { get; } = dataStart;
        public long DataLength { get; } = dataLength;
        public List<SafeTensorInfo> Tensors { get; } = [];
        public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

        public InvalidFileException Error(string problem, string? tensor = null) => new(FilePath, problem, tensor);
    }

    private static void ParseRoot(ref Utf8JsonReader reader, Context ctx)
    {
        if (!reader.Read()) throw ctx.Error("header is empty (expected a JSON object)");
        if (reader.TokenType != JsonTokenType.StartObject)
            throw ctx.Error($"header is not a JSON object (starts with {reader.TokenType})");

        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string name = reader.GetString()!;
            if (!seen.Add(name)) throw ctx.Error("name appears more than once in the header", name);
            reader.Read();
            if (name == MetadataKey) ReadMetadata(ref reader, ctx);
            else ctx.Tensors.Add(ReadEntry(ref reader, ctx, name));
        }
        // With the default options a second top-level value throws here; whitespace padding reads as end of input.
        if (reader.Read()) throw ctx.Error("header has content after its JSON object");
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, Context ctx)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw ctx.Error($"{MetadataKey} is not a JSON object");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            // Other readers (the reference implementation, transformers) require string values; accepting more
            // here would let us round-trip files they reject.
            if (reader.TokenType != JsonTokenType.String)
                throw ctx.Error($"{MetadataKey} value for '{key}' is {reader.TokenType}, expected a string");
            if (!ctx.Metadata.TryAdd(key, reader.GetString()!))
                throw ctx.Error($"{MetadataKey} key '{key}' appears more than once");
        }
    }

    private static SafeTensorInfo ReadEntry(ref Utf8JsonReader reader, Context ctx, string name)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw ctx.Error("header entry is not a JSON object", name);

        SafeDType? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            switch (key)
            {
                case "dtype":
                    if (dtype is not null) throw ctx.Error("'dtype' given twice", name);
                    string? text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    if (!SafeDTypes.TryParse(text, out SafeDType d))
                        throw ctx.Error($"unknown dtype {(text is null ? reader.TokenType.ToString() : $"'{text}'")} (expected one of {string.Join(", ", Enum.GetNames<SafeDType>())})", name);
                    dtype = d;
                    break;
                case "shape":
                    if (shape is not null) throw ctx.Error("'shape' given twice", name);
                    shape = ReadIntegers(ref reader, ctx, name, "shape");
                    break;
                case "data_offsets":
                    if (offsets is not null) throw ctx.Error("'data_offsets' given twice", name);
                    offsets = ReadIntegers(ref reader, ctx, name, "data_offsets");
                    if (offsets.Length != 2) throw ctx.Error($"data_offsets has {offsets.Length} values, expected [begin, end]", name);
                    break;
                default:
                    reader.Skip(); // unknown keys are ignored, as other readers do
                    break;
            }
        }

        if (dtype is null) throw ctx.Error("header entry has no 'dtype'", name);
        if (shape is null) throw ctx.Error("header entry has no 'shape'", name);
        if (offsets is null) throw ctx.Error("header entry has no 'data_offsets'", name);
        return Validate(ctx, name, dtype.Value, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadIntegers(ref Utf8JsonReader reader, Context ctx, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw ctx.Error($"{field} is not a list of integers", name);
        var values = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long v))
                throw ctx.Error($"{field} is not a list of integers", name);
            if (v < 0) throw ctx.Error($"{field} has a negative value {v}", name);
            values.Add(v);
        }
        return [.. values];
    }

    private static SafeTensorInfo Validate(Context ctx, string name, SafeDType dtype, long[] shape, long begin, long end)
    {
        if (begin > end) throw ctx.Error($"data_offsets [{begin}, {end}] begin after end", name);
        if (end > ctx.DataLength)
            throw ctx.Error($"data_offsets end {end} is beyond the data buffer of {ctx.DataLength} bytes (file truncated?)", name);
        long? expected = SafeDTypes.TryByteCount(dtype, shape);
        if (expected is null)
            throw ctx.Error($"shape [{string.Join(", ", shape)}] of {dtype} is too large to address", name);
        if (expected.Value != end - begin)
            throw ctx.Error($"data_offsets span {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected.Value}", name);
        return new SafeTensorInfo(name, dtype, shape, ctx.DataStart + begin, ctx.DataStart + end);
    }

    /// <summary>Two tensors sharing bytes would alias each other's weights; empty tensors occupy nothing.</summary>
    private static void CheckOverlaps(Context ctx)
    {
        var byStart = ctx.Tensors.Where(t => t.End > t.Begin).OrderBy(t => t.Begin).ToList();
        for (int i = 1; i < byStart.Count; i++)
        {
            SafeTensorInfo prev = byStart[i - 1], cur = byStart[i];
            if (cur.Begin < prev.End)
                throw ctx.Error($"data_offsets overlap those of '{prev.Name}'", cur.Name);
        }
    }
}
