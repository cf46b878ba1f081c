using System.Text.Json;
using System.Text.Json.Nodes;

namespace QuantSharp.Models;

/// <summary>The decoder families we run: they share one layer structure and differ in biases and norms.</summary>
public enum ModelFamily { Llama, Mistral, Qwen2, Qwen3 }

/// <summary>
/// Hugging Face config.json for the Llama-style decoders, normalised: explicit head_dim, both legacy
/// <c>rope_theta</c>/<c>rope_scaling</c> and transformers 5's <c>rope_parameters</c>, family-specific biases and norms.
/// The raw JSON is kept so exports can write it back with a quantization_config added.
/// </summary>
public sealed class ModelConfig
{
    public required string SourcePath { get; init; }
    public required string ModelType { get; init; }
    public required ModelFamily Family { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required double RmsNormEps { get; init; }
    public required RopeConfig Rope { get; init; }
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q/k/v (Qwen2 always; Llama when attention_bias).</summary>
    public required bool QkvBias { get; init; }
    /// <summary>Bias on o_proj (Llama's attention_bias covers o_proj too; Qwen2 has none there).</summary>
    public required bool OutputBias { get; init; }
    public required bool MlpBias { get; init; }
    /// <summary>RMSNorm over head_dim on queries and keys before RoPE (Qwen3).</summary>
    public required bool QkNorm { get; init; }
    public required string HiddenAct { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public string? TorchDtype { get; init; }
    public required JsonObject Raw { get; init; }

    public int KvGroups => NumHeads / NumKvHeads;

    public static ModelConfig Load(string modelDir)
    {
        string path = Directory.Exists(modelDir) ? Path.Combine(modelDir, "config.json") : modelDir;
        if (!File.Exists(path))
            throw new QuantSharpException($"{path}: config.json not found (is '{modelDir}' a Hugging Face model folder?)");
        return Parse(File.ReadAllText(path), path);
    }

    public static ModelConfig Parse(string json, string sourcePath)
    {
        JsonObject root;
        try
        {
            // Duplicate keys are an error at parse time (JsonObject would otherwise throw ArgumentException on first lookup).
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw new InvalidFileException(sourcePath, "config.json is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidFileException(sourcePath, "invalid JSON: " + e.Message, inner: e);
        }
        var r = new ConfigReader(root, sourcePath);

        string modelType = r.RequiredString("model_type");
        ModelFamily family = modelType switch
        {
            "llama" => ModelFamily.Llama,
            "mistral" => ModelFamily.Mistral,
            "qwen2" => ModelFamily.Qwen2,
            "qwen3" => ModelFamily.Qwen3,
            _ => throw new InvalidFileException(sourcePath,
                $"unsupported model_type '{modelType}' (supported: llama, mistral, qwen2, qwen3)"),
        };

        string act = r.OptionalString("hidden_act") ?? r.OptionalString("hidden_activation") ?? "silu";
        if (act is not ("silu" or "swish"))
            throw new InvalidFileException(sourcePath, $"unsupported hidden_act '{act}' (supported: silu)");

        int hidden = r.RequiredInt("hidden_size");
        int heads = r.RequiredInt("num_attention_heads");
        int kvHeads = r.OptionalInt("num_key_value_heads") ?? heads;
        int headDim = r.OptionalInt("head_dim") ?? hidden / heads;
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new InvalidFileException(sourcePath,
                $"num_attention_heads ({heads}) must be a positive multiple of num_key_value_heads ({kvHeads})");
        if (headDim <= 0 || headDim % 2 != 0)
            throw new InvalidFileException(sourcePath, $"head_dim {headDim} must be positive and even (RoPE rotates pairs)");

        bool attnBias = r.OptionalBool("attention_bias") ?? false;
        bool qkvBias = family == ModelFamily.Qwen2 || attnBias;
        bool outBias = family != ModelFamily.Qwen2 && attnBias;

        if (family is ModelFamily.Qwen2 or ModelFamily.Qwen3 && (r.OptionalBool("use_sliding_window") ?? false))
            throw new InvalidFileException(sourcePath, "use_sliding_window=true is not supported");

        return new ModelConfig
        {
            SourcePath = sourcePath,
            ModelType = modelType,
            Family = family,
            HiddenSize = hidden,
            IntermediateSize = r.RequiredInt("intermediate_size"),
            NumLayers = r.RequiredInt("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = r.RequiredInt("vocab_size"),
            MaxPositionEmbeddings = r.OptionalInt("max_position_embeddings") ?? 2048,
            RmsNormEps = r.OptionalDouble("rms_norm_eps") ?? 1e-6,
            Rope = RopeConfig.Parse(root, r, headDim),
            // transformers defaults tie_word_embeddings to false for all four families.
            TieWordEmbeddings = r.OptionalBool("tie_word_embeddings") ?? false,
            QkvBias = qkvBias,
            OutputBias = outBias,
            MlpBias = r.OptionalBool("mlp_bias") ?? false,
            QkNorm = family == ModelFamily.Qwen3,
            HiddenAct = act,
            BosTokenId = r.OptionalInt("bos_token_id"),
            EosTokenIds = r.IntOrIntList("eos_token_id"),
            TorchDtype = r.OptionalString("dtype") ?? r.OptionalString("torch_dtype"),
            Raw = root,
        };
    }

    /// <summary>The names of the decoder's linear layers inside layer <paramref name="layer"/>, in execution order.</summary>
    public static IReadOnlyList<string> LinearNames(int layer) =>
    [
        $"model.layers.{layer}.self_attn.q_proj", $"model.layers.{layer}.self_attn.k_proj", $"model.layers.{layer}.self_attn.v_proj",
        $"model.layers.{layer}.self_attn.o_proj", $"model.layers.{layer}.mlp.gate_proj", $"model.layers.{layer}.mlp.up_proj",
        $"model.layers.{layer}.mlp.down_proj",
    ];
}

/// <summary>Reads typed fields from config.json with errors that name the file and the key.</summary>
internal sealed class ConfigReader(JsonObject root, string path)
{
    public string RequiredString(string key) =>
        OptionalString(key) ?? throw new InvalidFileException(path, $"missing required key '{key}'");

    public int RequiredInt(string key) =>
        OptionalInt(key) ?? throw new InvalidFileException(path, $"missing required key '{key}'");

    public string? OptionalString(string key) => Get(key, JsonValueKind.String, n => n.GetValue<string>());

    public bool? OptionalBool(string key)
    {
        if (!root.TryGetPropertyValue(key, out var node) || node is null) return null;
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidFileException(path, $"key '{key}' must be true or false"),
        };
    }

    public int? OptionalInt(string key) => OptionalInt(root, key);

    public int? OptionalInt(JsonObject obj, string key)
    {
        double? d = OptionalDouble(obj, key);
        if (d is null) return null;
        if (d != Math.Floor(d.Value) || d < int.MinValue || d > int.MaxValue)
            throw new InvalidFileException(path, $"key '{key}' must be an integer, got {d}");
        return (int)d.Value;
    }

    public double? OptionalDouble(string key) => OptionalDouble(root, key);

    public double? OptionalDouble(JsonObject obj, string key)
    {
        if (!obj.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node.GetValueKind() != JsonValueKind.Number)
            throw new InvalidFileException(path, $"key '{key}' must be a number");
        return node.GetValue<double>();
    }

    public IReadOnlyList<int> IntOrIntList(string key)
    {
        if (!root.TryGetPropertyValue(key, out var node) || node is null) return [];
        if (node is JsonArray arr)
            return arr.Select(n => n is JsonValue v && v.TryGetValue<int>(out int i) ? i
                : throw new InvalidFileException(path, $"key '{key}' must be an integer or a list of integers")).ToArray();
        return [OptionalInt(key)!.Value];
    }

    public InvalidFileException Error(string problem) => new(path, problem);

    /// <summary>A string member of a nested object (null when absent); another kind of value is an error naming the key.</summary>
    public string? OptionalString(JsonObject obj, string key)
    {
        if (!obj.TryGetPropertyValue(key, out var node) || node is null) return null;
        return node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>()
            : throw new InvalidFileException(path, $"key '{key}' must be a string");
    }

    private T? Get<T>(string key, JsonValueKind kind, Func<JsonNode, T> read) where T : class
    {
        if (!root.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node.GetValueKind() != kind)
            throw new InvalidFileException(path, $"key '{key}' must be a {kind.ToString().ToLowerInvariant()}");
        return read(node);
    }
}
