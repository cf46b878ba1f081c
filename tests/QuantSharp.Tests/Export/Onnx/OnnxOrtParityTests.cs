using QuantSharp.Eval;
using QuantSharp.Export.Onnx;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export.Onnx;

/// <summary>
/// The exported graph run in real ONNX Runtime against QuantSharp's own fp32 forward of the same weights: the float
/// export logit for logit, the MatMulNBits exports against the model fake-quantized with the same quantizer.
/// </summary>
public sealed class OnnxOrtParityTests
{
    private const int SeqLen = 128;
    private const int Windows = 4;
    private static readonly Lazy<int[]> EvalIds = new(() =>
        BpeTokenizer.FromDirectory(Fixtures.MicroQwen3).Encode(File.ReadAllText(Fixtures.EvalText)));

    [Fact]
    public void FloatExport_MatchesOurFp32Logits()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("micro-float.onnx");
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var report = OnnxExporter.Export(model, path, new OnnxExportOptions(Float: true));
        Assert.Equal(new FileInfo(path).Length, report.FileBytes);
        Assert.False(File.Exists(path + ".tmp"));

        double maxDiff = MaxLogitDiff(model, path, out _, out _);
        Assert.True(maxDiff <= 1e-3, $"float export: max |ORT − ours| = {maxDiff:E3} > 1e-3");
    }

    [Theory]
    [InlineData(4, 32, false)]
    [InlineData(4, 128, true)]
    [InlineData(4, 64, true)]
    [InlineData(8, 64, true)]
    [InlineData(8, 128, false)]
    public void MatMulNBitsExport_MatchesOurForwardOfTheSameQuantizedWeights(int bits, int blockSize, bool symmetric)
    {
        var options = new OnnxExportOptions(bits, blockSize, symmetric);
        using var dir = Fixtures.NewTempDir();
        string path = dir.File($"micro-{options.Label}.onnx");
        using (var source = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
            OnnxExporter.Export(source, path, options);

        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        OnnxExporter.ApplyQuantization(model, options);
        double maxDiff = MaxLogitDiff(model, path, out double ortPpl, out double ourPpl);
        Assert.True(maxDiff <= 1e-2, $"{options.Label}: max |ORT − ours| = {maxDiff:E3} > 1e-2");
        Assert.True(Math.Abs(ortPpl / ourPpl - 1) <= 0.003, $"{options.Label}: ORT ppl {ortPpl:F4} vs ours {ourPpl:F4}");
    }

    [Fact]
    public void QuantizedFile_IsSmallerThanFloat_AndReportsBitsPerWeight()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var f = OnnxExporter.Export(model, dir.File("f.onnx"), new OnnxExportOptions(Float: true));
        var q = OnnxExporter.Export(model, dir.File("q.onnx"), new OnnxExportOptions(4, 128));
        Assert.True(q.FileBytes < f.FileBytes);
        Assert.Equal(4 + 32.0 / 128, q.LinearBitsPerWeight, 6); // 4-bit codes + one float scale per 128
        Assert.Equal(model.Layers.Sum(l => l.Linears().Sum(x => x.Linear.Weight.numel())), q.QuantizedWeights);
    }

    [Fact]
    public void ExternalDataExport_RunsInOrtWithTheSameLogitsAsTheInlineFile()
    {
        // The path a model over 2 GiB takes (forced here on micro-qwen3): large initializers in FILE.onnx.data.
        var options = new OnnxExportOptions(4, 32, Symmetric: false);
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var inline = OnnxExporter.Export(model, dir.File("inline.onnx"), options);
        var external = OnnxExporter.Export(model, dir.File("external.onnx"), options, forceExternalData: true);
        Assert.Null(inline.ExternalDataPath);
        Assert.Equal(dir.File("external.onnx.data"), external.ExternalDataPath);
        long graphOnly = new FileInfo(dir.File("external.onnx")).Length;
        Assert.True(graphOnly < inline.FileBytes / 10, $"the model file should hold only the graph and small constants, has {graphOnly} bytes");
        Assert.Equal(new FileInfo(dir.File("external.onnx")).Length + new FileInfo(dir.File("external.onnx.data")).Length, external.FileBytes);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));

        long[] ids = EvalIds.Value.Take(64).Select(i => (long)i).ToArray();
        using var a = new OrtModel(dir.File("inline.onnx"));
        using var b = new OrtModel(dir.File("external.onnx"));
        Assert.Equal(a.Logits(ids, 1, 64), b.Logits(ids, 1, 64));
    }

    /// <summary>Max |logit difference| over the first windows, and both perplexities by the project protocol.</summary>
    private static double MaxLogitDiff(CausalLM model, string onnxPath, out double ortPpl, out double ourPpl)
    {
        int[] ids = EvalIds.Value;
        long[] window = ids.Take(Windows * SeqLen).Select(i => (long)i).ToArray();
        int vocab = model.Config.VocabSize;
        using var ort = new OrtModel(onnxPath);
        float[] ortLogits = ort.Logits(window, Windows, SeqLen);
        ortPpl = Math.Exp(OrtModel.SummedNll(ortLogits, window, Windows, SeqLen, vocab) / (Windows * (SeqLen - 1)));
        ourPpl = PerplexityEvaluator.Evaluate(model, ids, SeqLen, Windows, batchSize: Windows).Perplexity;

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ours = model.Forward(tensor(window, [Windows, SeqLen], int64), null);
        var theirs = tensor(ortLogits, [Windows, SeqLen, vocab]);
        return (ours - theirs).abs().max().item<float>();
    }
}
