using System.Text.Json.Nodes;
using QuantSharp.Export;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>Reads AutoAWQ GEMM checkpoints (layout in <see cref="AwqExporter"/>).</summary>
public sealed class AwqCheckpoint : PackedCheckpoint
{
    public const string Method = AwqExporter.QuantMethod;

    private readonly int _group;

    internal AwqCheckpoint(string dir, JsonObject q) : base(dir, q)
    {
        int bits = ConfigInt("bits", ConfigInt("w_bit", 4));
        if (bits != 4) throw new InvalidFileException(ConfigPath, $"quantization_config.bits {bits}: AWQ GEMM checkpoints are 4-bit");
        string version = ConfigString("version", "gemm").ToLowerInvariant();
        if (version != "gemm") throw new InvalidFileException(ConfigPath, $"quantization_config.version '{version}': only the gemm layout is supported");
        if (!ConfigBool("zero_point", true)) throw new InvalidFileException(ConfigPath, "quantization_config.zero_point false is not supported");
        _group = ConfigInt("group_size", ConfigInt("q_group_size", 128));
        if (_group <= 0) throw new InvalidFileException(ConfigPath, $"quantization_config.group_size {_group} must be positive");
    }

    protected override bool IsPacked(string prefix) => Has(prefix + ".qweight");

    protected override Tensor DequantizeWeight(string prefix)
    {
        var (rows, cols) = LinearShape(prefix);
        if (cols % _group != 0 || rows % 8 != 0)
            throw new InvalidFileException(ConfigPath, $"[{rows}, {cols}] does not fit group size {_group} and 8 codes per int32", prefix);
        long groups = cols / _group;
        Tensor qweight = Need(prefix + ".qweight", ScalarType.Int32, cols, rows / 8);
        Tensor qzeros = Need(prefix + ".qzeros", ScalarType.Int32, groups, rows / 8);
        Tensor scales = NeedFloat(prefix + ".scales", groups, rows);
        Tensor codes = BitPacking.UnpackInt32(qweight, 4, dim: 1, BitPacking.AwqOrder).t(); // [out, in]
        Tensor zeros = BitPacking.UnpackInt32(qzeros, 4, dim: 1, BitPacking.AwqOrder).t();  // [out, groups]
        return IntDequantizer.Dequantize(codes, zeros, scales.t(), IntDequantizer.ContiguousGroups(cols, _group));
    }
}
