using System.Text.Json;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// The special-token names of transformers' tokenizer_config.json. tokenizer.json alone does not say which token
/// ends a sequence or pads a batch; this file does. A name may be absent (unknown), null (the model has none),
/// a string, or an AddedToken object with "content".
/// </summary>
internal sealed record TokenizerConfig(bool HasBos, string? Bos, bool HasEos, string? Eos, bool HasPad, string? Pad)
{
    public static TokenizerConfig Load(string path)
    {
        var r = new JsonReader(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw r.Fail($"cannot be read: {e.Message}", e);
        }
        using JsonDocument doc = r.Parse(text);
        JsonElement root = r.Object(doc.RootElement, "$");
        (bool hasBos, string? bos) = Name(r, root, "bos_token");
        (bool hasEos, string? eos) = Name(r, root, "eos_token");
        (bool hasPad, string? pad) = Name(r, root, "pad_token");
        return new TokenizerConfig(hasBos, bos, hasEos, eos, hasPad, pad);
    }

    private static (bool Present, string? Name) Name(JsonReader r, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out JsonElement v)) return (false, null);
        return v.ValueKind switch
        {
            JsonValueKind.Null => (true, null),
            JsonValueKind.String => (true, v.GetString()),
            JsonValueKind.Object => (true, r.String(r.Required(v, "content", "$." + key), $"$.{key}.content")),
            _ => throw r.Fail($"'$.{key}' must be a string, an object with \"content\", or null"),
        };
    }
}
