using System.Text.Json.Nodes;
using QuantSharp.IO.Tokenization;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>
/// Edited copies of micro-qwen3's tokenizer.json, to exercise the other forms tokenizer.json files take
/// (Llama-3/Qwen2 Split + ByteLevel sequences, legacy "a b" merges) and broken files.
/// </summary>
internal static class TokenizerVariants
{
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static JsonObject Original() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.MicroQwen3, "tokenizer.json")))!.AsObject();

    /// <summary>The pre-tokenizer Llama-3 ships: Split(regex, Isolated) then ByteLevel without its own regex.</summary>
    public static JsonObject WithLlama3PreTokenizer() => WithSplitPreTokenizer(Llama3Pattern);

    public static JsonObject WithSplitPreTokenizer(string pattern)
    {
        var json = Original();
        json["pre_tokenizer"] = JsonNode.Parse($$"""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": {{System.Text.Json.JsonSerializer.Serialize(pattern)}}}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """);
        return json;
    }

    /// <summary>Merges written in the pre-0.20 form: "a b" strings instead of ["a", "b"] pairs.</summary>
    public static JsonObject WithLegacyMerges()
    {
        var json = Original();
        var merges = json["model"]!["merges"]!.AsArray();
        var legacy = new JsonArray(merges.Select(m => (JsonNode?)JsonValue.Create($"{m![0]!.GetValue<string>()} {m[1]!.GetValue<string>()}")).ToArray());
        json["model"]!["merges"] = legacy;
        return json;
    }

    public static string Write(TempDir dir, JsonObject json, string name = "tokenizer.json")
    {
        string path = dir.File(name);
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    public static BpeTokenizer Load(Func<JsonObject> variant)
    {
        using var dir = new TempDir();
        return BpeTokenizer.FromFile(Write(dir, variant()));
    }
}
