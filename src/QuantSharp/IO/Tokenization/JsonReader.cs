using System.Text.Json;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// Typed access to a JSON file's elements that reports problems as <see cref="InvalidFileException"/> naming the
/// file and the JSON path, so that a malformed tokenizer.json says where it is malformed.
/// </summary>
internal readonly struct JsonReader(string filePath)
{
    public string FilePath { get; } = filePath;

    public InvalidFileException Fail(string problem, Exception? inner = null) => new(FilePath, problem, inner: inner);

    public JsonDocument Parse(string text)
    {
        try
        {
            return JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw Fail($"not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// The property, or null when it is absent or JSON null, or when <paramref name="obj"/> is not an object at all
    /// (found by fuzzing: TryGetProperty throws InvalidOperationException there). A container of the wrong kind then
    /// reads as missing its members, which the required ones report by path.
    /// </summary>
    public static JsonElement? Optional(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public JsonElement Required(JsonElement obj, string name, string path) =>
        Optional(obj, name) ?? throw Fail($"'{path}.{name}' is missing");

    public JsonElement Object(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Object ? e : throw Fail($"'{path}' must be an object, not {Kind(e)}");

    public JsonElement Array(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Array ? e : throw Fail($"'{path}' must be an array, not {Kind(e)}");

    public string String(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Fail($"'{path}' must be a string, not {Kind(e)}");

    public int Int(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : throw Fail($"'{path}' must be a 32-bit integer, not {Kind(e)} {e.GetRawText()}");

    public bool Bool(JsonElement obj, string name, string path, bool fallback) => Optional(obj, name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        JsonElement other => throw Fail($"'{path}.{name}' must be true or false, not {Kind(other)}"),
    };

    public string? OptionalString(JsonElement obj, string name, string path) =>
        Optional(obj, name) is JsonElement v ? String(v, $"{path}.{name}") : null;

    /// <summary>The "type" tag of a tokenizers component.</summary>
    public string Type(JsonElement e, string path) => String(Required(Object(e, path), "type", path), path + ".type");

    private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();
}
