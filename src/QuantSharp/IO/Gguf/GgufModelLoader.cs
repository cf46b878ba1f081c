using System.Globalization;
using System.Text.Json.Nodes;
using QuantSharp.Export.Gguf;
using QuantSharp.Export.Gguf.Blocks;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.IO.Gguf;

/// <summary>
/// Loads a GGUF file (llama, qwen2 or qwen3 architecture) back into a <see cref="CausalLM"/>: the hyper-parameters
/// are rebuilt as a config.json from the {arch}.* metadata, each tensor is dequantized to float and converted to the
/// requested dtype, and llama's q/k row permutation is undone. The tokenizer comes from tokenizer.huggingface.json.
/// This lets QuantSharp evaluate exactly the weights it wrote.
/// </summary>
public static class GgufModelLoader
{
    /// <summary>A path QuantSharp should treat as a GGUF file: an existing file whose first four bytes are "GGUF".</summary>
    public static bool IsGguf(string path)
    {
        if (!File.Exists(path)) return false;
        using var f = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return f.Read(magic) == 4 && BitConverter.ToUInt32(magic) == GgufFile.Magic;
    }

    public static CausalLM Load(string path, ScalarType dtype, Device device)
    {
        using var file = GgufFile.Open(path);
        var config = Config(file);
        string arch = config.ModelType;
        return CausalLM.FromCheckpoint(config, hfName => Read(file, hfName, config, arch), dtype, device, path);
    }

    public static BpeTokenizer LoadTokenizer(string path)
    {
        using var file = GgufFile.Open(path);
        string json = file.OptionalString("tokenizer.huggingface.json")
            ?? throw new InvalidFileException(path, "no tokenizer.huggingface.json metadata: QuantSharp needs the original tokenizer.json to tokenize for this file");
        string dir = Path.Combine(Path.GetTempPath(), "quantsharp-gguf-tok-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            string tokPath = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(tokPath, json);
            return BpeTokenizer.FromFile(tokPath);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A config.json equivalent of the file's metadata, parsed by the same code as a model folder's.</summary>
    public static ModelConfig Config(GgufFile f)
    {
        string arch = f.RequireString("general.architecture");
        if (arch is not ("llama" or "qwen2" or "qwen3"))
            throw new InvalidFileException(f.FilePath, $"general.architecture '{arch}' is not supported (supported: llama, qwen2, qwen3)");
        long Int(string key) => f.RequireInteger($"{arch}.{key}");
        int hidden = (int)Int("embedding_length");
        int heads = (int)Int("attention.head_count");
        var embed = f.Contains("token_embd.weight") ? f.GetInfo("token_embd.weight")
            : throw new InvalidFileException(f.FilePath, "tensor missing from the file", "token_embd.weight");
        var root = new JsonObject
        {
            ["model_type"] = arch,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = Int("feed_forward_length"),
            ["num_hidden_layers"] = Int("block_count"),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = f.OptionalInteger($"{arch}.attention.head_count_kv") ?? heads,
            ["head_dim"] = f.OptionalInteger($"{arch}.attention.key_length") ?? hidden / heads,
            ["vocab_size"] = embed.Dims[1],
            ["max_position_embeddings"] = f.OptionalInteger($"{arch}.context_length") ?? 2048,
            ["rms_norm_eps"] = Decimal(f.OptionalReal($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-6),
            ["rope_theta"] = Decimal(f.OptionalReal($"{arch}.rope.freq_base") ?? 10000.0),
            ["tie_word_embeddings"] = !f.Contains("output.weight"),
            ["attention_bias"] = arch == "llama" && f.Contains("blk.0.attn_q.bias"),
            ["hidden_act"] = "silu",
        };
        if (f.OptionalInteger("tokenizer.ggml.bos_token_id") is { } bos) root["bos_token_id"] = bos;
        if (f.OptionalInteger("tokenizer.ggml.eos_token_id") is { } eos) root["eos_token_id"] = eos;
        if (f.OptionalString($"{arch}.rope.scaling.type") is "linear")
            root["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = Decimal(f.OptionalReal($"{arch}.rope.scaling.factor") ?? 1.0) };
        else if (f.Has("quantsharp.rope.llama3.factor"))
            root["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = Decimal(f.OptionalReal("quantsharp.rope.llama3.factor")!.Value),
                ["low_freq_factor"] = Decimal(f.OptionalReal("quantsharp.rope.llama3.low_freq_factor") ?? 1.0),
                ["high_freq_factor"] = Decimal(f.OptionalReal("quantsharp.rope.llama3.high_freq_factor") ?? 4.0),
                ["original_max_position_embeddings"] = f.OptionalInteger("quantsharp.rope.llama3.original_context_length") ?? 8192,
            };
        else if (f.Contains(GgufModelMetadata.RopeFreqsTensor))
            throw new InvalidFileException(f.FilePath, "rope_freqs without QuantSharp's llama3 parameters: scaled rope from other converters is not supported", GgufModelMetadata.RopeFreqsTensor);
        return ModelConfig.Parse(root.ToJsonString(), f.FilePath);
    }

    /// <summary>
    /// A float32 metadata value as the decimal it was written from (1e-5 stored as float reads back as 9.99999974e-6;
    /// the shortest round-trip string recovers 1e-5, the value config.json had).
    /// </summary>
    private static double Decimal(double value) => double.Parse(((float)value).ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static Tensor? Read(GgufFile file, string hfName, ModelConfig config, string arch)
    {
        string? name = GgufTensorNames.ToGguf(hfName);
        if (name is null || !file.Contains(name)) return null;
        var info = file.GetInfo(name);
        if (!GgmlBlockCodecs.IsSupported(info.Type))
            throw new InvalidFileException(file.FilePath, $"tensor type {GgmlTypeSizes.Name(info.Type)} cannot be dequantized by QuantSharp", name);
        byte[] bytes = file.ReadBytes(name);
        float[] values = GgmlBlockCodecs.DequantizeRows(GgmlBlockCodecs.For(info.Type), bytes, info.ElementCount, info.Dims[0]);
        var t = tensor(values, info.TorchShape, float32);
        if (GgufModelMetadata.NeedsQkPermutation(arch))
        {
            int? heads = name.Contains(".attn_q.", StringComparison.Ordinal) ? config.NumHeads
                : name.Contains(".attn_k.", StringComparison.Ordinal) ? config.NumKvHeads : null;
            if (heads is { } h)
            {
                var unpermuted = LlamaQkPermutation.ToRotateHalf(t, h);
                t.Dispose();
                t = unpermuted;
            }
        }
        return t;
    }
}
