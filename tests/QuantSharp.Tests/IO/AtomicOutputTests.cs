using QuantSharp.Export;
using QuantSharp.Export.Gguf;
using QuantSharp.Export.Onnx;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.IO;

/// <summary>
/// Every writer fails in the middle of writing (a fault injected through <see cref="WriteFaults"/>, standing in for a
/// full disk or a kill) and must leave nothing at the target: no file, no folder, no temporary sibling, and an existing
/// output from before untouched.
/// </summary>
public class AtomicOutputTests
{
    private sealed class SimulatedDiskFailure(string where) : IOException("simulated failure while writing " + where);

    /// <summary>Throws at the first mid-write point whose description contains <paramref name="point"/>.</summary>
    private static IDisposable FailAt(string point) =>
        WriteFaults.Inject((p, path) => { if (p.Contains(point, StringComparison.Ordinal)) throw new SimulatedDiskFailure($"{p} of {path}"); });

    /// <summary>The only entries of <paramref name="dir"/> are <paramref name="expected"/> (no temporary leftovers).</summary>
    private static void AssertEntries(string dir, params string[] expected) =>
        Assert.Equal(expected.Order(), Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order()!);

    private static QuantizationResult QuantizeRtn(CausalLM model) =>
        LayerwiseQuantizer.Run(model, new QuantizationConfig { Weights = QuantSpec.Int(4, 128) }, null);

    [Fact]
    public void SynthLeavesNoFolderWhenItFailsAndKeepsTheOldOneWhenReplacing()
    {
        using var tmp = Fixtures.NewTempDir();
        string outDir = tmp.File("synth");
        var shape = ModelShape.Get("llama-3.1-8b") with { Hidden = 64, Ffn = 128, Heads = 4, KvHeads = 2, HeadDim = 16 };
        using (FailAt("tensor model.layers.0.self_attn.q_proj.weight"))
            Assert.Throws<SimulatedDiskFailure>(() => SyntheticModel.Write(shape, outDir, layers: 2, vocab: 32));
        AssertEntries(tmp.Path);

        SyntheticModel.Write(shape, outDir, layers: 1, vocab: 32);
        var before = Directory.GetFiles(outDir).Select(Path.GetFileName).Order().ToArray();
        var e = Assert.Throws<QuantSharpException>(() => SyntheticModel.Write(shape, outDir, layers: 2, vocab: 32));
        Assert.Contains("--overwrite", e.Message);
        using (FailAt("tensor model.norm.weight"))
            Assert.Throws<SimulatedDiskFailure>(() => SyntheticModel.Write(shape, outDir, layers: 2, vocab: 32, overwrite: true));
        AssertEntries(tmp.Path, "synth");
        Assert.Equal(before, Directory.GetFiles(outDir).Select(Path.GetFileName).Order().ToArray());
        Assert.Equal(1, ModelConfig.Load(outDir).NumLayers);
    }

    [Theory]
    [InlineData(ExportFormat.PseudoQuant)]
    [InlineData(ExportFormat.Gptq)]
    public void SaveAndExportFoldersLeaveNothingWhenAWriteFails(ExportFormat format)
    {
        using var tmp = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = QuantizeRtn(model);
        string outDir = tmp.File("saved");
        using (FailAt("tensor model.layers.1."))
            Assert.Throws<SimulatedDiskFailure>(() => PackedExporter.Write(result, format, outDir, overwrite: false));
        AssertEntries(tmp.Path);
        using (FailAt("folder"))
            Assert.Throws<SimulatedDiskFailure>(() => PackedExporter.Write(result, format, outDir, overwrite: false));
        AssertEntries(tmp.Path);
    }

    [Fact]
    public void JsonReportsKeepTheOldFileWhenTheWriteFails()
    {
        using var tmp = Fixtures.NewTempDir();
        string path = tmp.File("report.json");
        using (FailAt("file")) Assert.Throws<SimulatedDiskFailure>(() => AtomicFile.WriteAllText(path, "{\"run\": 1}"));
        AssertEntries(tmp.Path);
        AtomicFile.WriteAllText(path, "{\"run\": 1}");
        using (FailAt("file")) Assert.Throws<SimulatedDiskFailure>(() => AtomicFile.WriteAllText(path, "{\"run\": 2}"));
        AssertEntries(tmp.Path, "report.json");
        Assert.Equal("{\"run\": 1}", File.ReadAllText(path));
    }

    [Fact]
    public void GgufAndOnnxFilesLeaveNothingWhenAWriteFails()
    {
        using var tmp = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using (FailAt("gguf"))
            Assert.Throws<SimulatedDiskFailure>(() => GgufExporter.Write(model, tmp.File("m.gguf"), GgufType.Q8_0, null, Fixtures.MicroQwen3));
        AssertEntries(tmp.Path);
        using (FailAt("onnx data"))
            Assert.Throws<SimulatedDiskFailure>(() => OnnxExporter.Export(model, tmp.File("m.onnx"), new OnnxExportOptions(Float: true), forceExternalData: true));
        AssertEntries(tmp.Path);
    }

    [Fact]
    public void ALayerCheckpointInterruptedMidWriteIsNotLeftBehind()
    {
        using var tmp = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var config = new QuantizationConfig { Weights = QuantSpec.Int(4, 128), Checkpoint = new LayerCheckpoint(tmp.Path) };
        using (WriteFaults.Inject((p, path) =>
               {
                   if (p.StartsWith("tensor", StringComparison.Ordinal) && path.EndsWith("layer-00000.safetensors", StringComparison.Ordinal))
                       throw new SimulatedDiskFailure(p + " of " + path);
               }))
            Assert.Throws<SimulatedDiskFailure>(() => LayerwiseQuantizer.Run(model, config, null));
        Assert.Empty(Directory.EnumerateFiles(tmp.Path, "*.tmp*"));
        Assert.Empty(Directory.EnumerateFiles(tmp.Path, "layer-*"));
    }
}
