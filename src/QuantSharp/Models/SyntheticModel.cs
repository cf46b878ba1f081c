using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;
using static TorchSharp.torch;

namespace QuantSharp.Models;

/// <summary>Layer shapes of well-known models, for random-weight checkpoints used in benchmarks.</summary>
public sealed record ModelShape(string Name, string ModelType, int Hidden, int Ffn, int Layers, int Heads, int KvHeads,
    int HeadDim, int Vocab, double RopeTheta, bool Tied, bool Llama3Rope)
{
    public static readonly IReadOnlyDictionary<string, ModelShape> Known = new Dictionary<string, ModelShape>
    {
        ["llama-3.2-1b"] = new("llama-3.2-1b", "llama", 2048, 8192, 16, 32, 8, 64, 128256, 500000, true, true),
        ["llama-3.1-8b"] = new("llama-3.1-8b", "llama", 4096, 14336, 32, 32, 8, 128, 128256, 500000, false, true),
        ["llama-3.1-70b"] = new("llama-3.1-70b", "llama", 8192, 28672, 80, 64, 8, 128, 128256, 500000, false, true),
        ["qwen3-8b"] = new("qwen3-8b", "qwen3", 4096, 12288, 36, 32, 8, 128, 151936, 1000000, false, false),
    };

    public static ModelShape Get(string name) => Known.TryGetValue(name.ToLowerInvariant(), out var s)
        ? s
        : throw new QuantSharpException($"--like {name}: unknown shape (known: {string.Join(", ", Known.Keys)}).");
}

/// <summary>
/// Writes a random-weight Hugging Face checkpoint with real layer shapes, one tensor at a time into shards, so even
/// a 70B-shaped model never needs more memory than its largest tensor. Weights ~ N(0, 0.02) like transformers'
/// initialiser; norms are ones. bf16 on disk.
/// </summary>
public static class SyntheticModel
{
    public static void Write(ModelShape shape, string outDir, int? layers = null, int? vocab = null, string? tokenizerDir = null,
        long seed = 0, long maxShardBytes = 2L << 30, bool overwrite = false)
    {
        int nLayers = layers ?? shape.Layers;
        int nVocab = vocab ?? shape.Vocab;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(shape.ModelType switch { "qwen3" => "Qwen3ForCausalLM", "qwen2" => "Qwen2ForCausalLM", _ => "LlamaForCausalLM" }),
            ["model_type"] = shape.ModelType,
            ["hidden_size"] = shape.Hidden,
            ["intermediate_size"] = shape.Ffn,
            ["num_hidden_layers"] = nLayers,
            ["num_attention_heads"] = shape.Heads,
            ["num_key_value_heads"] = shape.KvHeads,
            ["head_dim"] = shape.HeadDim,
            ["vocab_size"] = nVocab,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = 1e-5,
            ["max_position_embeddings"] = 131072,
            ["tie_word_embeddings"] = shape.Tied,
            ["attention_bias"] = false,
            ["mlp_bias"] = false,
            ["bos_token_id"] = 0,
            ["eos_token_id"] = 1,
            ["dtype"] = "bfloat16",
            ["rope_parameters"] = shape.Llama3Rope
                ? new JsonObject
                {
                    ["rope_type"] = "llama3", ["rope_theta"] = shape.RopeTheta, ["factor"] = 8.0, ["low_freq_factor"] = 1.0,
                    ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
                }
                : new JsonObject { ["rope_type"] = "default", ["rope_theta"] = shape.RopeTheta },
        };
        DiskSpace.Require(outDir, 2 * ParameterCount(shape, nLayers, nVocab), "--out");
        // Written into a temporary sibling and renamed at the end: an interrupted synth leaves no half model behind.
        AtomicFolder.Write(outDir, overwrite, "--out", dir =>
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            if (tokenizerDir is not null)
            {
                foreach (string f in new[] { "tokenizer.json", "tokenizer_config.json" })
                {
                    string src = Path.Combine(tokenizerDir, f);
                    if (File.Exists(src)) File.Copy(src, Path.Combine(dir, f), overwrite: true);
                }
            }
            SafetensorsWriter.WriteSharded(dir, Tensors(shape, nLayers, nVocab, seed), maxShardBytes);
        });
    }

    /// <summary>Parameters of the checkpoint <see cref="Tensors"/> writes (bf16 on disk: two bytes each).</summary>
    private static long ParameterCount(ModelShape s, int layers, int vocab)
    {
        long h = s.Hidden, q = (long)s.Heads * s.HeadDim, kv = (long)s.KvHeads * s.HeadDim;
        long layer = 2 * h + h * (q + 2 * kv) + q * h + 3 * h * s.Ffn + (s.ModelType == "qwen3" ? 2L * s.HeadDim : 0);
        return layers * layer + (long)vocab * h * (s.Tied ? 1 : 2) + h;
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> Tensors(ModelShape s, int layers, int vocab, long seed)
    {
        var gen = new Generator((ulong)seed);
        Tensor Rand(params long[] shape) => (randn(shape, generator: gen) * 0.02f).to(bfloat16);
        Tensor Ones(long n) => ones(n, dtype: bfloat16);
        int q = s.Heads * s.HeadDim, kv = s.KvHeads * s.HeadDim;
        yield return new("model.embed_tokens.weight", Rand(vocab, s.Hidden));
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return new(p + "input_layernorm.weight", Ones(s.Hidden));
            yield return new(p + "self_attn.q_proj.weight", Rand(q, s.Hidden));
            yield return new(p + "self_attn.k_proj.weight", Rand(kv, s.Hidden));
            yield return new(p + "self_attn.v_proj.weight", Rand(kv, s.Hidden));
            yield return new(p + "self_attn.o_proj.weight", Rand(s.Hidden, q));
            if (s.ModelType == "qwen2")
            {
                // Qwen2 always has q/k/v biases (and none on o_proj).
                yield return new(p + "self_attn.q_proj.bias", Rand(q));
                yield return new(p + "self_attn.k_proj.bias", Rand(kv));
                yield return new(p + "self_attn.v_proj.bias", Rand(kv));
            }
            if (s.ModelType == "qwen3")
            {
                yield return new(p + "self_attn.q_norm.weight", Ones(s.HeadDim));
                yield return new(p + "self_attn.k_norm.weight", Ones(s.HeadDim));
            }
            yield return new(p + "post_attention_layernorm.weight", Ones(s.Hidden));
            yield return new(p + "mlp.gate_proj.weight", Rand(s.Ffn, s.Hidden));
            yield return new(p + "mlp.up_proj.weight", Rand(s.Ffn, s.Hidden));
            yield return new(p + "mlp.down_proj.weight", Rand(s.Hidden, s.Ffn));
        }
        yield return new("model.norm.weight", Ones(s.Hidden));
        if (!s.Tied) yield return new("lm_head.weight", Rand(vocab, s.Hidden));
    }
}
