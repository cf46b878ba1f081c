using static TorchSharp.torch;

namespace QuantSharp.Export.Gguf;

/// <summary>
/// Hugging Face Llama checkpoints rotate q/k in "rotate-half" order (pairs (i, i + d/2) of each head); llama.cpp's
/// llama architecture rotates adjacent pairs (2i, 2i+1). convert_hf_to_gguf therefore reorders the rows of q_proj
/// (and k_proj, with the kv head count) inside each head: view [heads, 2, d/2, …], swap the middle two axes. The
/// product of attention is unchanged because q and k are reordered alike. Qwen2/Qwen3 use llama.cpp's NeoX rotation
/// (rotate-half) and are written unpermuted.
/// </summary>
public static class LlamaQkPermutation
{
    /// <summary>HF row order → llama.cpp row order (weight [heads·d, in] or bias [heads·d]).</summary>
    public static Tensor ToInterleaved(Tensor t, int heads) => Reorder(t, heads, toInterleaved: true);

    /// <summary>llama.cpp row order → HF row order (the inverse, used when loading a GGUF back).</summary>
    public static Tensor ToRotateHalf(Tensor t, int heads) => Reorder(t, heads, toInterleaved: false);

    private static Tensor Reorder(Tensor t, int heads, bool toInterleaved)
    {
        long rows = t.shape[0];
        if (rows % (2 * heads) != 0) throw new ArgumentException($"{rows} rows cannot be split into {heads} heads of pairs");
        long half = rows / heads / 2;
        long[] rest = t.shape.Skip(1).ToArray();
        long[] view = toInterleaved
            ? [heads, 2, half, .. rest]
            : [heads, half, 2, .. rest];
        return t.reshape(view).transpose(1, 2).reshape(t.shape).contiguous();
    }
}
