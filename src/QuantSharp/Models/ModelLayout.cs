namespace QuantSharp.Models;

/// <summary>One parameter of a model, by its Hugging Face name, with the shape config.json implies.</summary>
public sealed record ParameterSlot(string Name, long[] Shape);

/// <summary>
/// The parameters a <see cref="CausalLM"/> built from a config holds, in its state-dict order (embeddings; per layer
/// input_layernorm, q/k/v/o with biases, q/k norms, post_attention_layernorm, gate/up/down; final norm; lm_head
/// unless tied), without loading the model: the low-memory streaming mode writes its output in this order so that it
/// matches the in-memory writer byte for byte (a test compares it with <see cref="CausalLM.StateDict"/>).
/// </summary>
public static class ModelLayout
{
    /// <summary>Decoder linears of one layer, in execution order (the same as <c>DecoderLayer.Linears()</c>).</summary>
    public static readonly string[] LayerLinears =
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    /// <summary>[out, in] of a decoder linear (short name as in <see cref="LayerLinears"/>).</summary>
    public static (long Out, long In) LinearShape(ModelConfig c, string linear)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim, ffn = c.IntermediateSize;
        return linear switch
        {
            "self_attn.q_proj" => (q, h),
            "self_attn.k_proj" or "self_attn.v_proj" => (kv, h),
            "self_attn.o_proj" => (h, q),
            "mlp.gate_proj" or "mlp.up_proj" => (ffn, h),
            "mlp.down_proj" => (h, ffn),
            _ => throw new ArgumentException("not a decoder linear: " + linear, nameof(linear)),
        };
    }

    /// <summary>[out, in] of a linear by full name (model.layers.N.… or lm_head).</summary>
    public static (long Out, long In) LinearShapeOf(ModelConfig c, string fullName)
    {
        if (fullName == "lm_head") return (c.VocabSize, c.HiddenSize);
        string linear = fullName[(fullName.IndexOf('.', "model.layers.".Length) + 1)..];
        return LinearShape(c, linear);
    }

    public static IEnumerable<ParameterSlot> Parameters(ModelConfig c)
    {
        long h = c.HiddenSize;
        yield return new("model.embed_tokens.weight", [c.VocabSize, h]);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return new(p + "input_layernorm.weight", [h]);
            foreach (var linear in LayerLinears)
            {
                if (linear == "mlp.gate_proj")
                {
                    if (c.QkNorm)
                    {
                        yield return new(p + "self_attn.q_norm.weight", [c.HeadDim]);
                        yield return new(p + "self_attn.k_norm.weight", [c.HeadDim]);
                    }
                    yield return new(p + "post_attention_layernorm.weight", [h]);
                }
                var (outF, inF) = LinearShape(c, linear);
                yield return new(p + linear + ".weight", [outF, inF]);
                bool bias = linear switch
                {
                    "self_attn.o_proj" => c.OutputBias,
                    "mlp.gate_proj" or "mlp.up_proj" or "mlp.down_proj" => c.MlpBias,
                    _ => c.QkvBias,
                };
                if (bias) yield return new(p + linear + ".bias", [outF]);
            }
        }
        yield return new("model.norm.weight", [h]);
        if (!c.TieWordEmbeddings) yield return new("lm_head.weight", [c.VocabSize, h]);
    }
}
