using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.Formats;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>
/// Reads FP-Quant checkpoints (quant_method fp_quant; layout in <see cref="FpQuantExporter"/>): weights from
/// qweight/scales/weight_global_scale (or dqweight when pseudoquantization is set), and, per decoder layer, the
/// online rotation of each input slot from forward_hadamard_matrix and an activation quantizer of forward_dtype with
/// act_global_scale, exactly as the exporting run used them.
/// </summary>
public sealed class FpQuantCheckpoint : PackedCheckpoint
{
    public const string Method = FpQuantExporter.QuantMethod;

    private readonly QuantSpec _spec;
    private readonly bool _pseudo;
    private readonly int _group;
    private readonly TransformKind _kind;

    internal FpQuantCheckpoint(string dir, JsonObject q) : base(dir, q)
    {
        _spec = ConfigString("forward_dtype") switch
        {
            "nvfp4" => QuantSpec.NvFp4(),
            "mxfp4" => QuantSpec.MxFp4(),
            var x => throw new InvalidFileException(ConfigPath, $"quantization_config.forward_dtype '{x}' is not nvfp4 or mxfp4"),
        };
        string method = ConfigString("forward_method", "abs_max");
        if (method != "abs_max")
            throw new InvalidFileException(ConfigPath, $"quantization_config.forward_method '{method}' is not supported (only abs_max)");
        _pseudo = ConfigBool("pseudoquantization", false);
        if (ConfigBool("store_master_weights", false))
            throw new InvalidFileException(ConfigPath, "quantization_config.store_master_weights is true: master-weight (training) checkpoints are not packed inference checkpoints");
        _group = ConfigInt("hadamard_group_size");
        _kind = ConfigString("transform_init", "hadamard") switch
        {
            "hadamard" => TransformKind.Hadamard,
            "gsr" => TransformKind.Gsr,
            "identity" => TransformKind.Identity,
            var x => throw new InvalidFileException(ConfigPath, $"quantization_config.transform_init '{x}' is not hadamard, gsr or identity"),
        };
    }

    public override bool HasOnlineState => true;

    protected override bool IsPacked(string prefix) => Has(prefix + (_pseudo ? ".dqweight" : ".qweight"));

    protected override Tensor DequantizeWeight(string prefix)
    {
        var (rows, cols) = LinearShape(prefix);
        if (_pseudo) return NeedFloat(prefix + ".dqweight", rows, cols);
        int g = _spec.GroupSize;
        if (cols % g != 0) throw new InvalidFileException(ConfigPath, $"in_features {cols} is not a multiple of the {_spec.FormatName} group {g}", prefix);
        Tensor packed = Need(prefix + ".qweight", ScalarType.Byte, rows, cols / 2);
        Tensor bytes = Need(prefix + ".scales", ScalarType.Byte, rows, cols / g);
        Tensor global = NeedFloat(prefix + ".weight_global_scale", 1);
        Tensor codes = BitPacking.UnpackNibbles(packed);
        Tensor effective = _spec.Format == QuantFormat.NvFp
            ? NvFp4Scales.EffectiveFromBytes(bytes, global)
            : MxFp4Scales.EffectiveFromBytes(bytes, global.item<float>());
        using var p = new GroupParams(effective, null, bytes, global, g, checked((int)cols));
        return WeightQuantizer.Create(_spec).Dequantize(codes, p);
    }

    protected override List<LayerQuantState> RestoreOnline(CausalLM model)
    {
        var c = model.Config;
        var widths = new Dictionary<string, int>
        {
            ["qkv"] = c.HiddenSize, ["o"] = c.NumHeads * c.HeadDim, ["gate_up"] = c.HiddenSize, ["down"] = c.IntermediateSize,
        };
        // The first linear reading each slot's input carries its matrix and activation scale (the others repeat them).
        return PerSlotStates(model, (st, layer, slot, linear) =>
        {
            using var scope = NewDisposeScope();
            string prefix = $"model.layers.{layer}.{linear}";
            Tensor matrix = NeedFloat(prefix + ".forward_hadamard_matrix", _group, _group);
            if (_kind != TransformKind.Identity)
                st.Transforms[slot] = BlockTransform.FromForwardBlock(_kind, widths[slot], matrix.to(model.DType), model.Device, model.DType);
            Tensor? gs = _spec.Format == QuantFormat.NvFp ? NeedFloat(prefix + ".act_global_scale", 1) : null;
            st.ActivationQuantizers[slot] = new ActivationQuantizerHook(_spec, gs);
        });
    }
}
