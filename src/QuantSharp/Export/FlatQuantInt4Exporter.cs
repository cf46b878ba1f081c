using System.Text.Json.Nodes;
using QuantSharp.Algorithms.FlatQuant;
using QuantSharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>
/// <c>--export flatquant-int4</c>: a FlatQuant model with real int4 weights. Every decoder linear is stored as
/// <c>{name}.qweight</c> (uint8 [out, in/2]: two signed 4-bit codes per byte in two's complement, even column in the
/// low nibble) and <c>{name}.scales</c> (float32 [out], per output channel; weight = code · scale). The online state
/// of layer N is stored under <c>model.layers.N.flatquant.*</c> in float16: the Kronecker factors (<c>qkv.left/right</c>,
/// <c>gate_up.*</c>, <c>down.*</c>), the head-mixing matrix <c>o.heads</c>, the K transform <c>k_cache.transform</c>
/// and the LAC ratios <c>{slot}.clip_max/clip_min</c>; inverses are recomputed (float64) at load. Norms (with the
/// add_diag scales folded in), embeddings, biases and lm_head keep the model dtype. config.json's quantization_config
/// (quant_method "flatquant") names the bits, activation symmetry and KV-cache settings that eval needs.
/// </summary>
public static class FlatQuantInt4Exporter
{
    public const string FormatName = "flatquant-int4";
    public const string QuantMethod = "flatquant";

    public static void Write(FlatQuantResult result, string outDir, bool overwrite, string flag = "--save")
    {
        var o = result.Options;
        if (o.WBits != 4)
            throw new QuantSharpException($"--export {FormatName} packs 4-bit weights; this run used --w-bits {o.WBits}.");
        var model = result.Model;
        foreach (var (name, linear) in model.Layers[0].Linears())
            if (linear.InFeatures % 2 != 0)
                throw new QuantSharpException($"--export {FormatName}: {name} has an odd input width {linear.InFeatures}; two codes per byte need an even one.");
        ExportFolder.Write(outDir, overwrite, flag, dir =>
        {
            ExportFolder.WriteConfig(dir, model, QuantizationConfig(result));
            ExportFolder.CopyTokenizer(dir, model);
            ExportFolder.WriteTensors(dir, Tensors(result));
        });
    }

    public static JsonObject QuantizationConfig(FlatQuantResult result)
    {
        var o = result.Options;
        return new JsonObject
        {
            ["quant_method"] = QuantMethod,
            ["format"] = FormatName,
            ["w_bits"] = o.WBits,
            ["w_group_size"] = -1,
            ["w_symmetric"] = true,
            ["a_bits"] = o.ABits,
            ["a_symmetric"] = !o.ActAsymmetric,
            ["k_bits"] = o.KvCache?.KBits ?? 16,
            ["v_bits"] = o.KvCache?.VBits ?? 16,
            ["kv_group_size"] = o.KvCache?.GroupSize ?? 128,
            ["kv_asymmetric"] = o.KvCache?.Asymmetric ?? true,
            ["online_dtype"] = "float16",
        };
    }

    private static IEnumerable<ExportTensor> Tensors(FlatQuantResult result)
    {
        var model = result.Model;
        var quantizer = Quantizers.WeightQuantizer.Create(result.WeightSpec);
        foreach (var (name, tensor) in model.StateDict())
        {
            string prefix = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : name;
            if (result.WeightParams.TryGetValue(prefix, out var p))
            {
                using var scope = NewDisposeScope();
                Tensor codes = quantizer.Codes(tensor.to(ScalarType.Float32), p);           // int8 in [−8, 7]
                yield return new ExportTensor(prefix + ".qweight", BitPacking.PackNibbles(codes).DetachFromDisposeScope());
                yield return new ExportTensor(prefix + ".scales", p.Scale.reshape(-1).to(ScalarType.Float32).contiguous().DetachFromDisposeScope());
                continue;
            }
            yield return new ExportTensor(name, tensor);
        }
        foreach (var layer in result.Layers)
            foreach (var (key, t) in layer.Tensors)
                yield return new ExportTensor($"model.layers.{layer.LayerIndex}.flatquant.{key}", t.to(ScalarType.Float16));
    }
}
