namespace QuantSharp.Export.Gguf;

/// <summary>
/// Hugging Face state-dict names ↔ the GGUF names llama.cpp's converter gives them (token_embd, blk.N.attn_q, …,
/// output_norm, output). A tied model has no output tensor: llama.cpp then projects with token_embd.
/// </summary>
public static class GgufTensorNames
{
    private static readonly (string Hf, string Gguf)[] LayerParts =
    [
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ];

    private static readonly (string Hf, string Gguf)[] Globals =
    [
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
    ];

    /// <summary>The GGUF name of a Hugging Face parameter, or null when llama.cpp has no tensor for it.</summary>
    public static string? ToGguf(string hfName)
    {
        string suffix = hfName.EndsWith(".weight", StringComparison.Ordinal) ? ".weight"
            : hfName.EndsWith(".bias", StringComparison.Ordinal) ? ".bias" : "";
        if (suffix.Length == 0) return null;
        string stem = hfName[..^suffix.Length];
        foreach (var (hf, gguf) in Globals)
            if (stem == hf) return gguf + suffix;
        const string prefix = "model.layers.";
        if (!stem.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = stem.IndexOf('.', prefix.Length);
        if (dot < 0 || !int.TryParse(stem.AsSpan(prefix.Length, dot - prefix.Length), out int layer)) return null;
        string part = stem[(dot + 1)..];
        foreach (var (hf, gguf) in LayerParts)
            if (part == hf) return $"blk.{layer}.{gguf}{suffix}";
        return null;
    }

    /// <summary>The Hugging Face name of a GGUF tensor, or null for tensors with no state-dict counterpart (rope_freqs).</summary>
    public static string? ToHf(string ggufName)
    {
        string suffix = ggufName.EndsWith(".weight", StringComparison.Ordinal) ? ".weight"
            : ggufName.EndsWith(".bias", StringComparison.Ordinal) ? ".bias" : "";
        if (suffix.Length == 0) return null;
        string stem = ggufName[..^suffix.Length];
        foreach (var (hf, gguf) in Globals)
            if (stem == gguf) return hf + suffix;
        if (!stem.StartsWith("blk.", StringComparison.Ordinal)) return null;
        int dot = stem.IndexOf('.', 4);
        if (dot < 0 || !int.TryParse(stem.AsSpan(4, dot - 4), out int layer)) return null;
        string part = stem[(dot + 1)..];
        foreach (var (hf, gguf) in LayerParts)
            if (part == gguf) return $"model.layers.{layer}.{hf}{suffix}";
        return null;
    }
}
