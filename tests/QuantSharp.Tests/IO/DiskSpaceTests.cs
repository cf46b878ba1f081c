using QuantSharp.Export;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.IO;

public class DiskSpaceTests
{
    [Fact]
    public void TooLittleFreeSpaceIsRefusedNamingTheFolderAndTheBytes()
    {
        var e = Assert.Throws<QuantSharpException>(() => DiskSpace.Check("/data/out", 10L << 30, 1L << 30, "--save"));
        Assert.Contains("--save /data/out", e.Message);
        long needed = (long)((10L << 30) * DiskSpace.Margin) + DiskSpace.MinimumSlackBytes;
        Assert.Contains($"({needed} bytes)", e.Message);
        Assert.Contains($"({1L << 30} bytes) are free", e.Message);
        DiskSpace.Check("/data/out", 1L << 30, 2L << 30, "--save"); // enough: no exception
    }

    [Fact]
    public void FreeSpaceIsFoundForAFolderThatDoesNotExistYet()
    {
        using var tmp = Fixtures.NewTempDir();
        long? free = DiskSpace.FreeBytes(Path.Combine(tmp.Path, "not", "yet", "there"));
        Assert.NotNull(free);
        Assert.True(free > 0);
    }

    [Fact]
    public void AnExportLargerThanTheDiskFailsBeforeWritingAnything()
    {
        using var tmp = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, new QuantizationConfig { Weights = QuantSpec.Int(4, 64) }, null);
        long free = DiskSpace.FreeBytes(tmp.Path)!.Value;
        Assert.True(PackedExporter.EstimateBytes(result) > model.ParameterCount() * 4 - 1);
        // The real check with the real free space: an export of the same model is fine...
        string outDir = Path.Combine(tmp.Path, "q");
        PackedExporter.Write(result, ExportFormat.Gptq, outDir, overwrite: false, "--save");
        Assert.True(File.Exists(Path.Combine(outDir, "config.json")));
        // ...and a disk with less free space than the estimate refuses before any file exists.
        var e = Assert.Throws<QuantSharpException>(() => DiskSpace.Check(outDir + "2", PackedExporter.EstimateBytes(result), 1000, "--save"));
        Assert.Contains("--save", e.Message);
        Assert.True(free > 0);
        Assert.Single(Directory.EnumerateDirectories(tmp.Path)); // no temporary sibling left behind
    }
}
