using System.Text.Json.Nodes;
using QuantSharp.Export;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>Reads GPTQ checkpoints (layout in <see cref="GptqExporter"/>), v1 (zeros minus one) and gptq_v2, any g_idx.</summary>
public sealed class GptqCheckpoint : PackedCheckpoint
{
    public const string Method = GptqExporter.QuantMethod;

    private readonly int _bits;
    private readonly int _group;
    private readonly bool _v1;

    internal GptqCheckpoint(string dir, JsonObject q) : base(dir, q)
    {
        _bits = ConfigInt("bits");
        if (_bits is not (2 or 4 or 8))
            throw new InvalidFileException(ConfigPath, $"quantization_config.bits {_bits}: only 2, 4 and 8-bit GPTQ layouts are supported (3-bit packs across words)");
        _group = ConfigInt("group_size", -1);
        if (_group == 0 || _group < -1) throw new InvalidFileException(ConfigPath, $"quantization_config.group_size {_group} is invalid");
        string format = ConfigString("checkpoint_format", "gptq");
        _v1 = format switch
        {
            "gptq" => true,
            "gptq_v2" => false,
            _ => throw new InvalidFileException(ConfigPath, $"quantization_config.checkpoint_format '{format}' is not gptq or gptq_v2"),
        };
    }

    protected override bool IsPacked(string prefix) => Has(prefix + ".qweight");

    protected override Tensor DequantizeWeight(string prefix)
    {
        var (rows, cols) = LinearShape(prefix);
        int pf = 32 / _bits;
        long g = _group == -1 ? cols : _group;
        if (cols % g != 0 || cols % pf != 0 || rows % pf != 0)
            throw new InvalidFileException(ConfigPath, $"[{rows}, {cols}] does not fit group size {g} and {pf} codes per int32", prefix);
        long groups = cols / g;
        Tensor qweight = Need(prefix + ".qweight", ScalarType.Int32, cols / pf, rows);
        Tensor qzeros = Need(prefix + ".qzeros", ScalarType.Int32, groups, rows / pf);
        Tensor scales = NeedFloat(prefix + ".scales", groups, rows);
        Tensor gIdx = Has(prefix + ".g_idx")
            ? Need(prefix + ".g_idx", ScalarType.Int32, cols).to(ScalarType.Int64)
            : IntDequantizer.ContiguousGroups(cols, g);
        if (gIdx.lt(0).any().item<bool>() || gIdx.ge(groups).any().item<bool>())
            throw new InvalidFileException(ShardOf(prefix + ".g_idx"), $"group indices outside [0, {groups})", prefix + ".g_idx");
        Tensor codes = BitPacking.UnpackInt32(qweight, _bits, dim: 0).t();          // [out, in]
        Tensor zeros = BitPacking.UnpackInt32(qzeros, _bits, dim: 1);               // [groups, out]
        if (_v1) zeros = zeros + 1;                                                 // v1 stores z − 1
        return IntDequantizer.Dequantize(codes, zeros.t(), scales.t(), gIdx);
    }
}
