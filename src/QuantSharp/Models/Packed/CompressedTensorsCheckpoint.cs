using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.Formats;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>
/// Reads compressed-tensors checkpoints in the nvfp4-pack-quantized and pack-quantized formats (layouts in
/// <see cref="CompressedTensorsExporter"/>) with one config group targeting Linear; NVFP4 input activations get an
/// activation quantizer with input_global_scale.
/// </summary>
public sealed class CompressedTensorsCheckpoint : PackedCheckpoint
{
    public const string Method = CompressedTensorsExporter.QuantMethod;

    private readonly string _format;
    private readonly int _bits;
    private readonly bool _symmetric;
    private readonly int _group; // -1: one group per row
    private readonly bool _nvfp4Activations;
    // float-quantized (FP8) input activations: per-token dynamic, or per-tensor static with input_scale.
    private readonly QuantSpec? _fp8Activations;

    internal CompressedTensorsCheckpoint(string dir, JsonObject q) : base(dir, q)
    {
        if (q["config_groups"] is not JsonObject groups || groups.Count != 1 || groups.First().Value is not JsonObject group)
            throw new InvalidFileException(ConfigPath, "quantization_config.config_groups must hold exactly one group (mixed schemes are not supported)");
        _format = (group["format"] ?? q["format"])?.GetValue<string>()
                  ?? throw new InvalidFileException(ConfigPath, "quantization_config.format is missing");
        if (group["weights"] is not JsonObject w) throw new InvalidFileException(ConfigPath, "quantization_config.config_groups.*.weights is missing");
        _bits = w["num_bits"]?.GetValue<int>() ?? throw new InvalidFileException(ConfigPath, "weights.num_bits is missing");
        _symmetric = w["symmetric"]?.GetValue<bool>() ?? true;
        string strategy = w["strategy"]?.GetValue<string>() ?? "";
        _group = strategy switch
        {
            "group" or "tensor_group" => w["group_size"]?.GetValue<int>() ?? throw new InvalidFileException(ConfigPath, "weights.group_size is missing"),
            "channel" => -1,
            "tensor" when _format == CompressedTensorsExporter.FloatQuantizedFormat => 0,
            _ => throw new InvalidFileException(ConfigPath, $"weights.strategy '{strategy}' is not supported (group, channel, tensor_group; tensor for float-quantized)"),
        };
        switch (_format)
        {
            case CompressedTensorsExporter.NvFp4Format:
                if (_bits != 4 || _group != NvFp4Scales.GroupSize || !_symmetric)
                    throw new InvalidFileException(ConfigPath, "nvfp4-pack-quantized needs 4-bit symmetric weights in groups of 16");
                break;
            case CompressedTensorsExporter.PackQuantizedFormat:
                if (_bits is not (4 or 8)) throw new InvalidFileException(ConfigPath, $"pack-quantized weights.num_bits {_bits}: 4 or 8 supported");
                break;
            case CompressedTensorsExporter.FloatQuantizedFormat:
                if (_bits != 8 || w["type"]?.GetValue<string>() != "float" || !_symmetric)
                    throw new InvalidFileException(ConfigPath, "float-quantized needs 8-bit symmetric float (FP8 E4M3) weights");
                break;
            default:
                throw new InvalidFileException(ConfigPath, $"quantization_config.format '{_format}' is not supported (nvfp4-pack-quantized, pack-quantized, float-quantized)");
        }
        if (group["input_activations"] is JsonObject fa && _format == CompressedTensorsExporter.FloatQuantizedFormat)
        {
            string aStrategy = fa["strategy"]?.GetValue<string>() ?? "";
            if (fa["num_bits"]?.GetValue<int>() != 8 || fa["type"]?.GetValue<string>() != "float" || aStrategy is not ("token" or "tensor"))
                throw new InvalidFileException(ConfigPath, "float-quantized input_activations must be 8-bit float per token (dynamic) or per tensor (static)");
            _fp8Activations = QuantSpec.Fp8(aStrategy == "token" ? QuantSpec.PerChannel : QuantSpec.PerTensor);
        }
        else if (group["input_activations"] is JsonObject a)
        {
            if (_format != CompressedTensorsExporter.NvFp4Format || a["num_bits"]?.GetValue<int>() != 4 || a["type"]?.GetValue<string>() != "float")
                throw new InvalidFileException(ConfigPath, "input_activations are supported only as NVFP4 with nvfp4-pack-quantized weights");
            _nvfp4Activations = true;
        }
    }

    public override bool HasOnlineState => _nvfp4Activations || _fp8Activations is not null;

    protected override bool IsPacked(string prefix) =>
        _format == CompressedTensorsExporter.FloatQuantizedFormat ? Has(prefix + ".weight_scale") : Has(prefix + ".weight_packed");

    protected override bool WeightHoldsCodes(string prefix) => _format == CompressedTensorsExporter.FloatQuantizedFormat;

    /// <summary>FP8 E4M3 (OCP) bytes times the channel or tensor scale, with the fp8 format's own decoder.</summary>
    private Tensor DequantizeFp8(string prefix, long rows, long cols)
    {
        Tensor bytes = Need(prefix + ".weight", ScalarType.Byte, rows, cols);
        bool perTensor = _group == 0;
        Tensor scale = NeedFloat(prefix + ".weight_scale", perTensor ? [1] : [rows, 1]);
        int columns = checked((int)cols);
        using var p = new GroupParams(scale.reshape(perTensor ? 1 : rows, 1), null, null, null, columns, columns);
        return WeightQuantizer.Create(QuantSpec.Fp8(perTensor ? QuantSpec.PerTensor : QuantSpec.PerChannel)).Dequantize(bytes, p);
    }

    protected override Tensor DequantizeWeight(string prefix)
    {
        var (rows, cols) = LinearShape(prefix);
        if (Has(prefix + ".weight_shape"))
        {
            var shape = Need(prefix + ".weight_shape", ScalarType.Int32, 2).data<int>().ToArray();
            if (shape[0] != rows || shape[1] != cols)
                throw new InvalidFileException(ShardOf(prefix + ".weight_shape"), $"[{shape[0]}, {shape[1]}] does not match config.json's [{rows}, {cols}]", prefix + ".weight_shape");
        }
        if (_format == CompressedTensorsExporter.FloatQuantizedFormat) return DequantizeFp8(prefix, rows, cols);
        long g = _group == -1 ? cols : _group;
        if (cols % g != 0) throw new InvalidFileException(ConfigPath, $"group size {g} does not divide in_features {cols}", prefix);
        long groups = cols / g;
        if (_format == CompressedTensorsExporter.NvFp4Format)
        {
            Tensor packed = Need(prefix + ".weight_packed", ScalarType.Byte, rows, cols / 2);
            Tensor bytes = Need(prefix + ".weight_scale", ScalarType.Byte, rows, groups);
            Tensor global = NeedFloat(prefix + ".weight_global_scale", 1);
            using var p = new GroupParams(NvFp4Scales.EffectiveFromBytes(bytes, global), null, bytes.clone(), global.clone(), (int)g, checked((int)cols));
            return WeightQuantizer.Create(QuantSpec.NvFp4()).Dequantize(BitPacking.UnpackNibbles(packed), p);
        }
        int pf = 32 / _bits;
        if (cols % pf != 0 || (!_symmetric && rows % pf != 0))
            throw new InvalidFileException(ConfigPath, $"[{rows}, {cols}] is not a multiple of {pf} codes per int32", prefix);
        Tensor codes = BitPacking.UnpackInt32(Need(prefix + ".weight_packed", ScalarType.Int32, rows, cols / pf), _bits, dim: 1);
        Tensor scales = NeedFloat(prefix + ".weight_scale", rows, groups);
        Tensor zeros = _symmetric
            ? full(rows, groups, 1L << (_bits - 1), ScalarType.Int64)
            : BitPacking.UnpackInt32(Need(prefix + ".weight_zero_point", ScalarType.Int32, rows / pf, groups), _bits, dim: 0);
        Tensor gIdx = Has(prefix + ".weight_g_idx")
            ? Need(prefix + ".weight_g_idx", ScalarType.Int32, cols).to(ScalarType.Int64)
            : IntDequantizer.ContiguousGroups(cols, g);
        if (gIdx.lt(0).any().item<bool>() || gIdx.ge(groups).any().item<bool>())
            throw new InvalidFileException(ShardOf(prefix + ".weight_g_idx"), $"group indices outside [0, {groups})", prefix + ".weight_g_idx");
        return IntDequantizer.Dequantize(codes, zeros, scales, gIdx);
    }

    protected override List<LayerQuantState> RestoreOnline(CausalLM model)
    {
        if (_fp8Activations is { } fp8)
            return PerSlotStates(model, (st, layer, slot, linear) =>
            {
                using Tensor? scale = fp8.GroupSize == QuantSpec.PerTensor ? NeedFloat($"model.layers.{layer}.{linear}.input_scale", 1) : null;
                st.ActivationQuantizers[slot] = new ActivationQuantizerHook(fp8, scale);
            });
        if (!_nvfp4Activations) return [];
        return PerSlotStates(model, (st, layer, slot, linear) =>
        {
            using var gs = NeedFloat($"model.layers.{layer}.{linear}.input_global_scale", 1);
            st.ActivationQuantizers[slot] = new ActivationQuantizerHook(QuantSpec.NvFp4(), gs);
        });
    }
}
