using QuantSharp.Export.Gguf.Blocks;
using QuantSharp.IO.Gguf;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Export.Gguf;

/// <summary>One tensor as written: GGUF name, ggml type, PyTorch shape, bytes.</summary>
public sealed record GgufTensorSummary(string Name, GgmlType Type, long[] Shape, long Bytes);

/// <summary>What an export wrote: per-tensor types (fallbacks visible), sizes and bits per weight.</summary>
public sealed record GgufExportReport(string Path, GgufType Type, bool UsedImportance, long FileBytes, IReadOnlyList<GgufTensorSummary> Tensors)
{
    public long Parameters => Tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
    public long TensorBytes => Tensors.Sum(t => t.Bytes);
    /// <summary>Bits per parameter over all tensors (norms and embeddings included), as llama.cpp reports BPW.</summary>
    public double BitsPerWeight => 8.0 * TensorBytes / Parameters;
    /// <summary>How many tensors of each ggml type.</summary>
    public IReadOnlyDictionary<GgmlType, int> TypeCounts => Tensors.GroupBy(t => t.Type).ToDictionary(g => g.Key, g => g.Count());
}

/// <summary>
/// Writes a model as a GGUF file llama.cpp runs: llama/qwen2/qwen3 metadata, the byte-level BPE tokenizer, tensors
/// named as llama.cpp's converter names them (llama q/k rows permuted to llama.cpp's rotation order), 1-D tensors
/// in F32 and every 2-D weight in the requested type (or llama.cpp's fallback where rows are not whole blocks),
/// quantized with ggml's rules, optionally weighted by an importance matrix.
/// </summary>
public static class GgufExporter
{
    /// <summary>Loads a Hugging Face model folder in float32 and writes it.</summary>
    public static GgufExportReport Write(string modelDir, string outPath, GgufType type, ImportanceMatrix? imatrix = null)
    {
        using var model = CausalLM.Load(modelDir, float32, CPU);
        return Write(model, outPath, type, imatrix);
    }

    /// <summary>Writes a loaded model; its tokenizer is read from <paramref name="tokenizerDir"/> (default: the model's folder).</summary>
    public static GgufExportReport Write(CausalLM model, string outPath, GgufType type, ImportanceMatrix? imatrix = null, string? tokenizerDir = null)
    {
        var config = model.Config;
        string source = tokenizerDir ?? model.SourceDirectory
            ?? throw new QuantSharpException("the model has no source folder to read tokenizer.json from; pass tokenizerDir");
        string arch = GgufModelMetadata.Architecture(config);
        var writer = new GgufWriter();
        bool quantized = type is not (GgufType.F32 or GgufType.F16 or GgufType.BF16);
        writer.Add("general.architecture", GgufValue.Of(arch));
        writer.Add("general.name", GgufValue.Of(Path.GetFileName(Path.TrimEndingDirectorySeparator(source))));
        writer.Add("general.file_type", GgufValue.Of(GgufTypes.FileType(type)));
        if (quantized) writer.Add("general.quantization_version", GgufValue.Of(2u));
        GgufModelMetadata.Add(writer, config);
        GgufTokenizerMetadata.Add(writer, source, config.VocabSize, config.BosTokenId, config.EosTokenIds);

        bool useImportance = imatrix is not null && GgufTypes.UsesImportance(type);
        var summaries = new List<GgufTensorSummary>();
        if (config.Rope.Type == RopeType.Llama3)
        {
            float[] factors = GgufModelMetadata.Llama3RopeFactors(config);
            AddTensor(writer, summaries, GgufModelMetadata.RopeFreqsTensor, [factors.Length], GgmlType.F32,
                () => GgmlBlockCodecs.QuantizeRows(GgmlBlockCodecs.For(GgmlType.F32), factors, factors.Length, default));
        }
        foreach (var (hfName, parameter) in model.StateDict())
        {
            string ggufName = GgufTensorNames.ToGguf(hfName)
                ?? throw new QuantSharpException($"{source}: tensor '{hfName}' has no GGUF name (unsupported layer)");
            long[] shape = parameter.shape;
            GgmlType ggml = shape.Length == 1 ? GgmlType.F32 : GgufTypes.ForRow(GgufTypes.Ggml(type), shape[^1]);
            float[]? importance = useImportance && shape.Length == 2 ? imatrix!.For(hfName) : null;
            if (importance is not null && importance.Length != shape[^1])
                throw new QuantSharpException($"importance matrix for '{hfName}' has {importance.Length} columns, the weight has {shape[^1]}");
            var p = parameter;
            int? permuteHeads = GgufModelMetadata.NeedsQkPermutation(arch) ? QkHeads(hfName, config) : null;
            AddTensor(writer, summaries, ggufName, shape, ggml, () => Encode(p, ggml, permuteHeads, importance));
        }

        writer.Write(outPath);
        return new GgufExportReport(outPath, type, useImportance, new FileInfo(outPath).Length, summaries);
    }

    private static void AddTensor(GgufWriter writer, List<GgufTensorSummary> summaries, string name, long[] shape, GgmlType type, Func<byte[]> produce)
    {
        writer.AddTensor(name, shape, type, produce);
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        summaries.Add(new GgufTensorSummary(name, type, shape, GgmlTypeSizes.RowBytes(type, shape[^1]) * (elements / shape[^1])));
    }

    /// <summary>q_proj rows are permuted per attention head, k_proj per kv head (weights and biases alike).</summary>
    private static int? QkHeads(string hfName, ModelConfig c) =>
        hfName.Contains(".self_attn.q_proj.", StringComparison.Ordinal) ? c.NumHeads
        : hfName.Contains(".self_attn.k_proj.", StringComparison.Ordinal) ? c.NumKvHeads
        : null;

    private static byte[] Encode(Tensor parameter, GgmlType type, int? permuteHeads, float[]? importance)
    {
        using var scope = NewDisposeScope();
        var t = parameter.detach().to(float32).cpu();
        if (permuteHeads is { } heads) t = LlamaQkPermutation.ToInterleaved(t, heads);
        float[] values = t.contiguous().data<float>().ToArray();
        long rowLength = t.shape[^1];
        return GgmlBlockCodecs.QuantizeRows(GgmlBlockCodecs.For(type), values, rowLength, importance);
    }
}
