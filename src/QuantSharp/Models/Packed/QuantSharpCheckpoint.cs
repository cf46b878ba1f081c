using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.Export;
using QuantSharp.Formats;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>
/// Reads QuantSharp's own packed format (<see cref="QuantSharpExporter"/>): each linear listed in qconfig.json with a
/// storage entry is unpacked and dequantized by the same quantizer that made it, so the weights are bit-identical
/// to the in-memory quantized model's.
/// </summary>
public sealed class QuantSharpCheckpoint : PackedCheckpoint
{
    public const string Method = QuantSharpExporter.QuantMethod;

    private readonly Dictionary<string, JsonObject> _storage = new();
    private readonly string _qconfigPath;

    internal QuantSharpCheckpoint(string dir, JsonObject q) : base(dir, q)
    {
        int version = ConfigInt("format_version");
        if (version != QuantSharpExporter.FormatVersion)
            throw new InvalidFileException(ConfigPath, $"quantization_config.format_version {version}: this build reads version {QuantSharpExporter.FormatVersion}");
        _qconfigPath = Path.Combine(dir, ConfigString("qconfig", QuantSharpExporter.QConfigFile));
        if (!File.Exists(_qconfigPath)) throw new InvalidFileException(_qconfigPath, "missing (config.json declares quant_method quantsharp)");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(_qconfigPath)) as JsonObject ?? throw new InvalidFileException(_qconfigPath, "not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidFileException(_qconfigPath, "invalid JSON: " + e.Message, inner: e);
        }
        QConfig = root;
        if (root["layers"] is not JsonObject layers) throw new InvalidFileException(_qconfigPath, "'layers' missing");
        foreach (var (name, node) in layers)
            if (node?["storage"] is JsonObject storage) _storage[name] = storage;
    }

    /// <summary>qconfig.json: the recipe and each linear's resolved configuration.</summary>
    public JsonObject QConfig { get; }

    protected override bool IsPacked(string prefix) => _storage.ContainsKey(prefix);

    protected override Tensor DequantizeWeight(string prefix)
    {
        var s = _storage[prefix];
        var spec = SpecOf(s, prefix);
        var shape = s["shape"] as JsonArray;
        if (shape is not { Count: 2 }) throw new InvalidFileException(_qconfigPath, "storage.shape must be [out, in]", prefix);
        long outFeatures = shape[0]!.GetValue<long>(), inFeatures = shape[1]!.GetValue<long>();
        // group_dim 0: codes and parameters describe Wᵀ.
        bool transposed = spec.GroupDim == 0;
        long rows = transposed ? inFeatures : outFeatures, columns = transposed ? outFeatures : inFeatures;
        int groupSize = spec.GroupSize > 0 ? spec.GroupSize : (int)columns;
        if (columns % groupSize != 0) throw new InvalidFileException(_qconfigPath, $"group size {groupSize} does not divide {columns} columns", prefix);
        long groups = columns / groupSize;
        long paramRows = spec.GroupSize == QuantSpec.PerTensor ? 1 : rows;
        long paramGroups = spec.GroupSize == QuantSpec.PerTensor ? 1 : groups;

        Tensor words = Need(prefix + ".qweight", ScalarType.Int32, rows, CodeWords.Words(columns, spec.Bits));
        Tensor scale = Need(prefix + ".scales", ScalarType.Float32, paramRows, paramGroups);
        Tensor? zero = Has(prefix + ".qzeros") ? Need(prefix + ".qzeros", ScalarType.Byte, paramRows, paramGroups).to(float32)
            : Has(prefix + ".zeros") ? Need(prefix + ".zeros", ScalarType.Float32, paramRows, paramGroups) : null;
        Tensor? bytes = Has(prefix + ".scale_bytes") ? Need(prefix + ".scale_bytes", ScalarType.Byte, paramRows, paramGroups) : null;
        Tensor? global = Has(prefix + ".global_scale") ? Need(prefix + ".global_scale", ScalarType.Float32, 1) : null;
        if (Has(prefix + ".g_idx"))
        {
            Tensor gIdx = Need(prefix + ".g_idx", ScalarType.Int32, columns).to(ScalarType.Int64);
            if (!gIdx.eq(IntDequantizer.ContiguousGroups(columns, groupSize)).all().item<bool>())
                throw new InvalidFileException(ShardOf(prefix + ".g_idx"), "group indices are not contiguous (i / group_size)", prefix + ".g_idx");
        }
        long offset = s["code_offset"]?.GetValue<long>() ?? 0;
        var codeType = (s["code_dtype"]?.GetValue<string>() ?? "uint8") switch
        {
            "int8" => ScalarType.Int8,
            "uint8" => ScalarType.Byte,
            var x => throw new InvalidFileException(_qconfigPath, $"storage.code_dtype '{x}' is not int8 or uint8", prefix),
        };
        Tensor codes = CodeWords.Unpack(words, spec.Bits, columns).sub(offset).to(codeType);
        using var p = new GroupParams(scale, zero, bytes, global, spec.GroupSize == QuantSpec.PerTensor ? (int)columns : groupSize, (int)columns);
        Tensor w = WeightQuantizer.Create(spec).Dequantize(codes, p);
        return transposed ? w.t().contiguous() : w;
    }

    private QuantSpec SpecOf(JsonObject s, string prefix)
    {
        try
        {
            string format = s["format"]!.GetValue<string>();
            var f = QuantSpec.FormatFromName(format)
                ?? throw new InvalidFileException(_qconfigPath, $"storage.format '{format}' is unknown to this build", prefix);
            var rule = s["mx_scale_rule"]?.GetValue<string>() == "ocp" ? MxScaleRule.Ocp : MxScaleRule.FpQuant;
            var spec = new QuantSpec(f, s["bits"]!.GetValue<int>(), s["group_size"]!.GetValue<int>(), s["symmetric"]?.GetValue<bool>() ?? true,
                ObserverKind.MinMax, rule)
            {
                GroupDim = s["group_dim"]?.GetValue<int>() ?? 1,
                FullRange = s["full_range"]?.GetValue<bool>() ?? false,
                SymmetricRule = s["symmetric_rule"]?.GetValue<string>() == "inc" ? IntSymmetricRule.Inc : IntSymmetricRule.FpQuant,
                Fp8Aware = s["fp8_aware"]?.GetValue<bool>() ?? false,
                Fp8Variant = s["fp8_variant"]?.GetValue<string>() is { } v
                    ? E4M3Variants.Parse(v, $"{_qconfigPath}: {prefix}: storage.fp8_variant") : E4M3Variant.Ocp,
            };
            spec.Validate($"{_qconfigPath}: {prefix}: storage.");
            return spec;
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new InvalidFileException(_qconfigPath, $"storage entry is incomplete or mistyped ({e.Message})", prefix);
        }
    }
}
