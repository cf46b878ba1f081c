using QuantSharp.Export.Gguf;
using QuantSharp.IO.Gguf;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export.Gguf;

public sealed class GgufNamingTests
{
    [Theory]
    [InlineData("model.embed_tokens.weight", "token_embd.weight")]
    [InlineData("model.norm.weight", "output_norm.weight")]
    [InlineData("lm_head.weight", "output.weight")]
    [InlineData("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight")]
    [InlineData("model.layers.11.post_attention_layernorm.weight", "blk.11.ffn_norm.weight")]
    [InlineData("model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight")]
    [InlineData("model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias")]
    [InlineData("model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight")]
    [InlineData("model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight")]
    [InlineData("model.layers.3.self_attn.q_norm.weight", "blk.3.attn_q_norm.weight")]
    [InlineData("model.layers.3.self_attn.k_norm.weight", "blk.3.attn_k_norm.weight")]
    [InlineData("model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight")]
    [InlineData("model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight")]
    [InlineData("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight")]
    public void HuggingFaceNames_MapToLlamaCppNames_AndBack(string hf, string gguf)
    {
        Assert.Equal(gguf, GgufTensorNames.ToGguf(hf));
        Assert.Equal(hf, GgufTensorNames.ToHf(gguf));
    }

    [Theory]
    [InlineData("model.layers.0.self_attn.rotary_emb.inv_freq")]
    [InlineData("model.layers.x.mlp.up_proj.weight")]
    [InlineData("something.weight")]
    public void UnknownNames_HaveNoGgufName(string hf) => Assert.Null(GgufTensorNames.ToGguf(hf));

    [Fact]
    public void QkPermutation_InterleavesRotateHalfPairs_PerHead()
    {
        // Two heads of dim 4, one input column: HF rows per head [a0 a1 b0 b1] (pairs (a0,b0), (a1,b1)) become
        // llama.cpp's adjacent pairs [a0 b0 a1 b1].
        using var w = tensor(new float[] { 0, 1, 2, 3, 10, 11, 12, 13 }, [8, 1], float32);
        using var p = LlamaQkPermutation.ToInterleaved(w, 2);
        Assert.Equal(new float[] { 0, 2, 1, 3, 10, 12, 11, 13 }, p.data<float>().ToArray());
        using var back = LlamaQkPermutation.ToRotateHalf(p, 2);
        Assert.Equal(w.data<float>().ToArray(), back.data<float>().ToArray());
    }

    [Fact]
    public void QkPermutation_InverseRestoresAnyShape()
    {
        using var w = randn(4 * 64, 96);
        using var p = LlamaQkPermutation.ToInterleaved(w, 4);
        using var back = LlamaQkPermutation.ToRotateHalf(p, 4);
        Assert.True(TensorEquality.Same(back, w));
        using var b = randn(2 * 64);
        using var bp = LlamaQkPermutation.ToRotateHalf(LlamaQkPermutation.ToInterleaved(b, 2), 2);
        Assert.True(TensorEquality.Same(bp, b));
    }

    [Theory]
    [InlineData(GgufType.Q4_K, 512, GgmlType.Q4_K)]
    [InlineData(GgufType.Q4_K, 384, GgmlType.Q5_0)]     // llama.cpp's fallback for rows not whole super-blocks
    [InlineData(GgufType.Q4_K, 1408, GgmlType.Q5_0)]
    [InlineData(GgufType.IQ4_NL, 384, GgmlType.IQ4_NL)]
    [InlineData(GgufType.Q8_0, 48, GgmlType.F16)]
    public void RowsThatAreNotWholeBlocks_GetLlamaCppsFallback(GgufType type, long row, GgmlType expected) =>
        Assert.Equal(expected, GgufTypes.ForRow(GgufTypes.Ggml(type), row));
}

public sealed class GgufRopeFactorTests
{
    [Fact]
    public void Llama3RopeFactors_AreOneForShortWavelengths_FactorForLong_BlendBetween()
    {
        const string json = """
        {"model_type":"llama","hidden_size":256,"intermediate_size":512,"num_hidden_layers":1,"num_attention_heads":2,
         "vocab_size":16,"rope_theta":500000.0,
         "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
        """;
        var config = QuantSharp.Models.ModelConfig.Parse(json, "config.json");
        float[] f = GgufModelMetadata.Llama3RopeFactors(config);
        Assert.Equal(64, f.Length);
        Assert.Equal(1f, f[0], 5);          // highest frequency: wavelength 2π < 8192/4
        Assert.Equal(8f, f[^1], 4);         // lowest frequency: wavelength > 8192
        Assert.All(f, v => Assert.InRange(v, 1f - 1e-5f, 8f + 1e-4f));
        Assert.Contains(f, v => v > 1.01f && v < 7.99f);
    }
}
