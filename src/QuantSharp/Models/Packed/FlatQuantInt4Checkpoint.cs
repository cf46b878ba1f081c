using System.Text.Json.Nodes;
using QuantSharp.Algorithms.FlatQuant;
using QuantSharp.Export;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>
/// Reads <see cref="FlatQuantInt4Exporter"/>'s layout: int4 codes × per-channel scales become the weights, and each
/// layer's online state (Kronecker transforms, head mixing, K transform, LAC quantizers, KV-cache quantizer) is
/// rebuilt, so evaluation runs W4A4KV4 exactly as the quantizing run did.
/// </summary>
public sealed class FlatQuantInt4Checkpoint : PackedCheckpoint
{
    public const string Method = FlatQuantInt4Exporter.QuantMethod;

    private readonly FlatQuantRuntime _runtime;

    internal FlatQuantInt4Checkpoint(string dir, JsonObject q) : base(dir, q)
    {
        if (ConfigInt("w_bits") != 4)
            throw new InvalidFileException(ConfigPath, $"quantization_config.w_bits {ConfigInt("w_bits")}: the flatquant layout packs 4-bit weights");
        int k = ConfigInt("k_bits", 16), v = ConfigInt("v_bits", 16);
        var kv = k < 16 || v < 16 ? new KvCacheSpec(k, v, ConfigInt("kv_group_size", 128), ConfigBool("kv_asymmetric", true)) : null;
        try { kv?.Validate(ModelConfig.HeadDim); }
        catch (QuantSharpException e) { throw new InvalidFileException(ConfigPath, e.Message); }
        _runtime = new FlatQuantRuntime(ConfigInt("a_bits", 16), ConfigBool("a_symmetric", true), kv, ModelConfig.NumHeads, ModelConfig.HeadDim);
    }

    public override bool HasOnlineState => true;

    protected override bool IsPacked(string prefix) => Has(prefix + ".qweight");

    protected override Tensor DequantizeWeight(string prefix)
    {
        var (rows, cols) = LinearShape(prefix);
        Tensor packed = Need(prefix + ".qweight", ScalarType.Byte, rows, cols / 2);
        Tensor scales = NeedFloat(prefix + ".scales", rows);
        Tensor codes = BitPacking.UnpackNibbles(packed).to(ScalarType.Int32);
        codes = where(codes.ge(8), codes - 16, codes);                                  // two's-complement nibbles
        return codes.to(ScalarType.Float32) * scales.unsqueeze(1);
    }

    protected override List<LayerQuantState> RestoreOnline(CausalLM model)
    {
        var states = new List<LayerQuantState>();
        foreach (var layer in model.Layers)
        {
            string prefix = $"model.layers.{layer.Index}.flatquant.";
            var tensors = new Dictionary<string, Tensor>();
            foreach (var key in new[] { "qkv.left", "qkv.right", "gate_up.left", "gate_up.right", "down.left", "down.right", "o.heads",
                         "k_cache.transform", "qkv.clip_max", "qkv.clip_min", "o.clip_max", "o.clip_min", "gate_up.clip_max", "gate_up.clip_min",
                         "down.clip_max", "down.clip_min", "k_cache.clip_max", "k_cache.clip_min", "v_cache.clip_max", "v_cache.clip_min" })
                if (Has(prefix + key)) tensors[key] = NeedFloat(prefix + key).to(model.Device);
            foreach (var required in new[] { "qkv.left", "qkv.right", "gate_up.left", "gate_up.right", "down.left", "down.right", "o.heads" })
                if (!tensors.ContainsKey(required))
                    throw new InvalidFileException(Tensors.SourcePath, "missing (quant_method flatquant needs every layer's online transforms)", prefix + required);
            var online = new FlatQuantOnline(layer.Index, tensors);
            online.Attach(layer, _runtime);
            var state = new LayerQuantState(layer.Index);
            state.Owned.Add(online);
            states.Add(state);
        }
        return states;
    }
}
