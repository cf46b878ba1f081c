using System.Text;
using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Export;

/// <summary>Formats that cannot hold a run, and corrupt or inconsistent packed folders: clear errors naming the file/tensor.</summary>
public class PackedExportErrorTests
{
    private static string ExportGptq(TempDir dir, string name = "g")
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, PackedRoundTripTests.Recipe("int4-sym-g64"), null);
        string outDir = dir.File(name);
        PackedExporter.Write(result, ExportFormat.Gptq, outDir, false);
        return outDir;
    }

    [Fact]
    public void WeightOnlyIntFormatsRefuseRotatedRunsAndLeaveNothingBehind()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, new QuantizationConfig
        {
            Weights = QuantSpec.Int(4, 64), Transform = TransformKind.Hadamard, TransformGroupSize = 64,
        }, null);
        foreach (var f in new[] { ExportFormat.Gptq, ExportFormat.GptqV2, ExportFormat.Awq, ExportFormat.CompressedTensorsInt })
        {
            var e = Assert.Throws<QuantSharpException>(() => PackedExporter.Write(result, f, dir.File("x"), false));
            Assert.Contains("rotation", e.Message);
        }
        var fp = Assert.Throws<QuantSharpException>(() => PackedExporter.Write(result, ExportFormat.FpQuant, dir.File("x"), false));
        Assert.Contains("mxfp4 or nvfp4", fp.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void FpQuantNeedsW4A4()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, new QuantizationConfig { Weights = QuantSpec.NvFp4() }, null);
        var e = Assert.Throws<QuantSharpException>(() => PackedExporter.Write(result, ExportFormat.FpQuant, dir.File("x"), false));
        Assert.Contains("W4A4", e.Message);
    }

    [Fact]
    public void GptqV1RefusesAZeroPointOfZero()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, PackedRoundTripTests.Recipe("int4-asym-g64"), null);
        // A group whose values are all ≥ 0 gets zero point 0: make one.
        var st = result.Layers[0].WeightParams["self_attn.q_proj"];
        st.Zero!.index_put_(tensor(0f), 0, 0);
        var q = WeightQuantizer.Create(QuantSpec.Int(4, 64, symmetric: false));
        var lin = model.Layers[0].SelfAttn.QProj;
        using (no_grad()) lin.Weight.copy_(q.QuantizeDequantize(lin.Weight, st));
        var e = Assert.Throws<QuantSharpException>(() => PackedExporter.Write(result, ExportFormat.Gptq, dir.File("x"), false));
        Assert.Contains("gptq-v2", e.Message);
        Assert.Contains("model.layers.0.self_attn.q_proj", e.Message);
    }

    [Fact]
    public void AWeightThatIsNotOnItsGridIsRefused()
    {
        using var dir = Fixtures.NewTempDir();
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, PackedRoundTripTests.Recipe("int4-sym-g64"), null);
        using (no_grad()) model.Layers[1].Mlp.UpProj.Weight.add_(1e-3f);
        var e = Assert.Throws<QuantSharpException>(() => PackedExporter.Write(result, ExportFormat.Awq, dir.File("x"), false));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message);
        Assert.False(Directory.Exists(dir.File("x")));
    }

    [Fact]
    public void MissingQzerosNamesTheTensor()
    {
        using var dir = Fixtures.NewTempDir();
        string g = ExportGptq(dir);
        RewriteTensors(g, tensors => tensors.Remove("model.layers.2.mlp.down_proj.qzeros"));
        var e = Assert.Throws<InvalidFileException>(() => OnlineQuantization.Load(g, float32, CPU));
        Assert.Contains("model.layers.2.mlp.down_proj.qzeros", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void ScalesOfTheWrongShapeNameTheTensor()
    {
        using var dir = Fixtures.NewTempDir();
        string g = ExportGptq(dir);
        RewriteTensors(g, tensors => tensors["model.layers.0.self_attn.k_proj.scales"] = zeros(3, 128, dtype: float16));
        var e = Assert.Throws<InvalidFileException>(() => OnlineQuantization.Load(g, float32, CPU));
        Assert.Contains("model.layers.0.self_attn.k_proj.scales", e.Message);
        Assert.Contains("[3, 128]", e.Message);
    }

    [Fact]
    public void AByteCountThatDoesNotMatchTheDtypeIsACorruptFile()
    {
        using var dir = Fixtures.NewTempDir();
        string g = ExportGptq(dir);
        string file = Path.Combine(g, "model.safetensors");
        // Claim the uint8 qweight... of a GPTQ file is int64: same offsets, 2× the bytes the shape needs.
        byte[] bytes = File.ReadAllBytes(file);
        ulong n = BitConverter.ToUInt64(bytes, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n))!.AsObject();
        header["model.layers.0.self_attn.q_proj.qweight"]!["dtype"] = "I64";
        byte[] h = Encoding.UTF8.GetBytes(header.ToJsonString());
        using (var s = File.Create(file))
        {
            s.Write(BitConverter.GetBytes((ulong)h.Length));
            s.Write(h);
            s.Write(bytes, 8 + (int)n, bytes.Length - 8 - (int)n);
        }
        var e = Assert.Throws<InvalidFileException>(() => OnlineQuantization.Load(g, float32, CPU));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("model.layers.0.self_attn.q_proj.qweight", e.Message);
    }

    [Fact]
    public void AnUnknownCheckpointFormatInConfigIsNamed()
    {
        using var dir = Fixtures.NewTempDir();
        string g = ExportGptq(dir);
        string cfgPath = Path.Combine(g, "config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["quantization_config"]!["checkpoint_format"] = "marlin";
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        var e = Assert.Throws<InvalidFileException>(() => OnlineQuantization.Load(g, float32, CPU));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("checkpoint_format 'marlin'", e.Message);
    }

    [Fact]
    public void AnOldPseudoquantFolderWithoutParametersIsAClearError()
    {
        using var dir = Fixtures.NewTempDir();
        using (var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU))
        {
            using var result = LayerwiseQuantizer.Run(model, PackedRoundTripTests.Recipe("int4-sym-g64"), null);
            PseudoQuantExporter.Write(result, dir.File("pq"));
        }
        File.Delete(Path.Combine(dir.File("pq"), PseudoQuantExporter.WeightParamsFile));
        var e = Assert.Throws<InvalidFileException>(() => QuantSharp.Models.Packed.PseudoQuantSource.Load(dir.File("pq"), float32, CPU));
        Assert.Contains(PseudoQuantExporter.WeightParamsFile, e.Message);
    }

    /// <summary>Reads every tensor of a single-file checkpoint, lets the test edit the set, writes it back.</summary>
    private static void RewriteTensors(string folder, Action<Dictionary<string, Tensor>> edit)
    {
        string file = Path.Combine(folder, "model.safetensors");
        var tensors = new Dictionary<string, Tensor>();
        using (var ckpt = SafetensorsCheckpoint.Open(folder))
            foreach (var n in ckpt.Names) tensors[n] = ckpt.Read(n);
        edit(tensors);
        SafetensorsWriter.Write(file, tensors);
        foreach (var t in tensors.Values) t.Dispose();
    }
}
