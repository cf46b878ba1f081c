using QuantSharp.Export.Gguf;
using QuantSharp.IO.Gguf;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export.Gguf;

/// <summary>Whole-model exports: the metadata llama.cpp needs, the tensor table, and loading the file back.</summary>
public sealed class GgufExportTests
{
    [Fact]
    public void MicroQwen3_Metadata_IsWhatLlamaCppReads()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("m.gguf");
        var report = GgufExporter.Write(Fixtures.MicroQwen3, path, GgufType.Q8_0);
        var config = ModelConfig.Load(Fixtures.MicroQwen3);

        using var f = GgufFile.Open(path);
        Assert.Equal("qwen3", f.RequireString("general.architecture"));
        Assert.Equal(7L, f.RequireInteger("general.file_type"));
        Assert.Equal(2L, f.RequireInteger("general.quantization_version"));
        Assert.Equal(config.HiddenSize, f.RequireInteger("qwen3.embedding_length"));
        Assert.Equal(config.NumLayers, f.RequireInteger("qwen3.block_count"));
        Assert.Equal(config.IntermediateSize, f.RequireInteger("qwen3.feed_forward_length"));
        Assert.Equal(config.NumHeads, f.RequireInteger("qwen3.attention.head_count"));
        Assert.Equal(config.NumKvHeads, f.RequireInteger("qwen3.attention.head_count_kv"));
        Assert.Equal(config.HeadDim, f.RequireInteger("qwen3.attention.key_length"));
        Assert.Equal(config.HeadDim, f.RequireInteger("qwen3.attention.value_length"));
        Assert.Equal(config.MaxPositionEmbeddings, f.RequireInteger("qwen3.context_length"));
        Assert.Equal(config.VocabSize, f.RequireInteger("qwen3.vocab_size"));
        Assert.Equal((float)config.Rope.Theta, (float)f.OptionalReal("qwen3.rope.freq_base")!.Value);
        Assert.Equal((float)config.RmsNormEps, (float)f.OptionalReal("qwen3.attention.layer_norm_rms_epsilon")!.Value);

        Assert.Equal("gpt2", f.RequireString("tokenizer.ggml.model"));
        Assert.Equal("gpt-2", f.RequireString("tokenizer.ggml.pre"));
        string[] tokens = f.RequireArray<string>("tokenizer.ggml.tokens", GgufValueType.String);
        int[] types = f.RequireArray<int>("tokenizer.ggml.token_type", GgufValueType.Int32);
        string[] merges = f.RequireArray<string>("tokenizer.ggml.merges", GgufValueType.String);
        Assert.Equal(config.VocabSize, tokens.Length);
        Assert.Equal(tokens.Length, types.Length);
        Assert.Equal(7933, merges.Length);
        Assert.All(merges, m => Assert.Equal(2, m.Split(' ').Length));
        Assert.Equal("<|begin_of_text|>", tokens[0]);
        Assert.Equal(3, types[0]);   // control
        Assert.Equal(1, types[100]); // normal
        Assert.Equal(0L, f.RequireInteger("tokenizer.ggml.bos_token_id"));
        Assert.Equal(1L, f.RequireInteger("tokenizer.ggml.eos_token_id"));
        Assert.Equal(2L, f.RequireInteger("tokenizer.ggml.padding_token_id"));

        // Tied embeddings: no output tensor. 1-D tensors F32, 2-D in the requested type.
        Assert.False(f.Contains("output.weight"));
        Assert.Equal(GgmlType.Q8_0, f.GetInfo("token_embd.weight").Type);
        Assert.Equal(new long[] { config.HiddenSize, config.VocabSize }, f.GetInfo("token_embd.weight").Dims);
        Assert.Equal(GgmlType.F32, f.GetInfo("blk.0.attn_q_norm.weight").Type);
        Assert.Equal(GgmlType.F32, f.GetInfo("output_norm.weight").Type);
        Assert.Equal(new long[] { config.HiddenSize, config.NumHeads * config.HeadDim }, f.GetInfo("blk.3.attn_q.weight").Dims);
        Assert.Equal(2 + 11 * config.NumLayers, f.Tensors.Count); // per layer: 2 norms, q k v o, q/k norms, gate up down
        Assert.Equal(f.Tensors.Count, report.Tensors.Count);
        Assert.Equal(new FileInfo(path).Length, report.FileBytes);
        Assert.InRange(report.BitsPerWeight, 8.0, 9.0);
    }

    [Fact]
    public void F32Export_LoadsBackToTheSameLogits()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("f32.gguf");
        GgufExporter.Write(Fixtures.MicroQwen3, path, GgufType.F32);
        using var original = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var loaded = GgufModelLoader.Load(path, float32, CPU);
        Assert.Equal(original.Config.RmsNormEps, loaded.Config.RmsNormEps);
        Assert.Equal(original.Config.Rope.Theta, loaded.Config.Rope.Theta);
        Assert.Equal(original.Config.TieWordEmbeddings, loaded.Config.TieWordEmbeddings);
        using var ids = tensor(new long[] { 5, 17, 300, 2000, 41, 8000 }, [1, 6], int64);
        using var a = original.forward(ids);
        using var b = loaded.forward(ids);
        Assert.True(TensorEquality.Same(a, b), "F32 GGUF must reproduce the model exactly");
    }

    [Fact]
    public void Tokenizer_FromGguf_EncodesLikeTheModelFolder()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("t.gguf");
        GgufExporter.Write(Fixtures.MicroQwen3, path, GgufType.Q4_0);
        var fromGguf = GgufModelLoader.LoadTokenizer(path);
        var fromDir = BpeTokenizer.FromDirectory(Fixtures.MicroQwen3);
        string text = File.ReadAllText(Fixtures.EvalText)[..5000];
        Assert.Equal(fromDir.Encode(text), fromGguf.Encode(text));
    }

    [ModelFact("tiny-llama")]
    public void Llama_QkRowsArePermutedInTheFile_AndRestoredOnLoad()
    {
        string model = Fixtures.Model("tiny-llama")!;
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("llama.gguf");
        GgufExporter.Write(model, path, GgufType.F32);
        using var original = CausalLM.Load(model, float32, CPU);
        var q = original.Layers[0].SelfAttn.QProj.Weight;
        using (var f = GgufFile.Open(path))
        {
            Assert.Equal("llama", f.RequireString("general.architecture"));
            Assert.True(f.Contains("output.weight"));
            var info = f.GetInfo("blk.0.attn_q.weight");
            float[] stored = QuantSharp.Export.Gguf.Blocks.GgmlBlockCodecs.DequantizeRows(
                QuantSharp.Export.Gguf.Blocks.GgmlBlockCodecs.For(GgmlType.F32), f.ReadBytes(info.Name), info.ElementCount, info.Dims[0]);
            using var storedT = tensor(stored, info.TorchShape, float32);
            using var expected = LlamaQkPermutation.ToInterleaved(q.detach(), original.Config.NumHeads);
            Assert.True(TensorEquality.Same(storedT, expected));
            Assert.False(TensorEquality.Same(storedT, q));
        }
        using var loaded = GgufModelLoader.Load(path, float32, CPU);
        Assert.True(TensorEquality.Same(loaded.Layers[0].SelfAttn.QProj.Weight, q));
        Assert.True(TensorEquality.Same(loaded.Layers[5].SelfAttn.KProj.Weight, original.Layers[5].SelfAttn.KProj.Weight));
    }

    [Fact]
    public void ImportanceMatrix_HasOneEntryPerInputColumnOfEveryLinear()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var windows = new[] { Enumerable.Range(10, 64).ToArray(), Enumerable.Range(500, 64).ToArray() };
        var im = ImportanceMatrix.Collect(model, windows);
        Assert.Equal(128, im.Tokens);
        Assert.Equal(7 * model.Config.NumLayers, im.Columns.Count);
        Assert.Equal(model.Config.HiddenSize, im.For("model.layers.0.self_attn.q_proj.weight")!.Length);
        Assert.Equal(model.Config.IntermediateSize, im.For("model.layers.2.mlp.down_proj.weight")!.Length);
        Assert.All(im.Columns.Values, v => Assert.All(v, x => Assert.True(x >= 0 && float.IsFinite(x))));
        Assert.Equal(im.For("model.layers.1.self_attn.q_proj.weight"), im.For("model.layers.1.self_attn.v_proj.weight"));
        Assert.All(model.Layers, l => Assert.All(l.Linears(), x => Assert.Null(x.Linear.InputObserver)));
    }
}
