using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Models.Packed;

/// <summary>
/// A checkpoint whose linear weights are stored packed (fp_quant, gptq, awq, compressed-tensors). It answers reads
/// of <c>….weight</c> with the dequantized float32 weight and any other name with the stored tensor, so
/// <see cref="CausalLM.FromCheckpoint"/> builds the model unchanged; formats with online rotations and activation
/// quantizers restore them afterwards.
/// </summary>
public abstract class PackedCheckpoint : IDisposable
{
    protected PackedCheckpoint(string dir, JsonObject quantizationConfig)
    {
        Directory = dir;
        Config = quantizationConfig;
        ConfigPath = Path.Combine(dir, "config.json");
        ModelConfig = ModelConfig.Load(dir);
        Tensors = SafetensorsCheckpoint.Open(dir);
    }

    public ModelConfig ModelConfig { get; }

    public string Directory { get; }
    public string ConfigPath { get; }
    public JsonObject Config { get; }
    protected SafetensorsCheckpoint Tensors { get; }

    /// <summary>The quant_method values a packed checkpoint declares.</summary>
    public static readonly string[] Methods = [FpQuantCheckpoint.Method, GptqCheckpoint.Method, AwqCheckpoint.Method, CompressedTensorsCheckpoint.Method, FlatQuantInt4Checkpoint.Method,
        QuantSharpCheckpoint.Method];

    /// <summary>The packed reader of a model folder, or null when its weights are plain.</summary>
    public static PackedCheckpoint? TryOpen(string dir)
    {
        var config = ModelConfig.Load(dir);
        if (config.Raw["quantization_config"] is not JsonObject q) return null;
        string? method = q["quant_method"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        return method switch
        {
            FpQuantCheckpoint.Method => new FpQuantCheckpoint(dir, q),
            GptqCheckpoint.Method => new GptqCheckpoint(dir, q),
            AwqCheckpoint.Method => new AwqCheckpoint(dir, q),
            CompressedTensorsCheckpoint.Method => new CompressedTensorsCheckpoint(dir, q),
            FlatQuantInt4Checkpoint.Method => new FlatQuantInt4Checkpoint(dir, q),
            QuantSharpCheckpoint.Method => new QuantSharpCheckpoint(dir, q),
            _ => null,
        };
    }

    /// <summary>Loads the model with dequantized weights and its online quantization state.</summary>
    public LoadedModel Load(ScalarType dtype, Device device)
    {
        var model = CausalLM.FromCheckpoint(ModelConfig, Read, dtype, device, Directory);
        try
        {
            return new LoadedModel(model, RestoreOnline(model));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>A tensor by name: a linear's weight dequantized (float32, CPU) if stored packed, else as stored; null if absent.</summary>
    public Tensor? Read(string name)
    {
        if (name.EndsWith(".weight", StringComparison.Ordinal))
        {
            string prefix = name[..^".weight".Length];
            if ((!Tensors.Contains(name) || WeightHoldsCodes(prefix)) && IsPacked(prefix))
            {
                using var scope = NewDisposeScope();
                return DequantizeWeight(prefix).MoveToOuterDisposeScope();
            }
        }
        return Tensors.Contains(name) ? Tensors.Read(name) : null;
    }

    /// <summary>True when the linear named by <paramref name="prefix"/> is stored in this format's packed layout.</summary>
    protected abstract bool IsPacked(string prefix);

    /// <summary>True when <c>prefix.weight</c> itself holds codes (compressed-tensors' float-quantized FP8 bytes).</summary>
    protected virtual bool WeightHoldsCodes(string prefix) => false;

    /// <summary>The float32 [out, in] weight of a packed linear.</summary>
    protected abstract Tensor DequantizeWeight(string prefix);

    /// <summary>True when the model needs <see cref="RestoreOnline"/> to compute what was exported (W4A4 formats).</summary>
    public virtual bool HasOnlineState => false;

    /// <summary>Online rotations / activation quantizers to attach (none for weight-only formats).</summary>
    protected virtual List<LayerQuantState> RestoreOnline(CausalLM model) => [];

    /// <summary>The first linear reading each online slot's input: it carries the slot's stored matrix and activation scale.</summary>
    protected static readonly IReadOnlyDictionary<string, string> SlotReaders = new Dictionary<string, string>
    {
        ["qkv"] = "self_attn.q_proj", ["o"] = "self_attn.o_proj", ["gate_up"] = "mlp.gate_proj", ["down"] = "mlp.down_proj",
    };

    /// <summary>
    /// One <see cref="LayerQuantState"/> per decoder layer, filled per (slot, reading linear) by <paramref name="fill"/>
    /// and attached; on a failure the states built so far are disposed.
    /// </summary>
    protected static List<LayerQuantState> PerSlotStates(CausalLM model, Action<LayerQuantState, int, string, string> fill)
    {
        var states = new List<LayerQuantState>();
        try
        {
            foreach (var layer in model.Layers)
            {
                var st = new LayerQuantState(layer.Index);
                states.Add(st);
                foreach (var (slot, linear) in SlotReaders) fill(st, layer.Index, slot, linear);
                st.Attach(layer);
            }
            return states;
        }
        catch
        {
            foreach (var s in states) s.Dispose();
            throw;
        }
    }

    /// <summary>A stored tensor that must exist, with the expected dtype and shape; errors name the file and tensor.</summary>
    protected Tensor Need(string name, ScalarType dtype, params long[] shape)
    {
        if (!Tensors.Contains(name))
            throw new InvalidFileException(Tensors.SourcePath, $"missing (config.json declares quant_method {Config["quant_method"]})", name);
        Tensor t = Tensors.Read(name);
        if (t.dtype != dtype || (shape.Length > 0 && !t.shape.SequenceEqual(shape)))
        {
            string found = $"{t.dtype} [{string.Join(", ", t.shape)}]";
            t.Dispose();
            throw new InvalidFileException(Tensors.ShardOf(name),
                $"expected {dtype}{(shape.Length > 0 ? $" [{string.Join(", ", shape)}]" : "")}, found {found}", name);
        }
        return t;
    }

    /// <summary>A stored floating-point tensor of any float dtype, converted to float32.</summary>
    protected Tensor NeedFloat(string name, params long[] shape)
    {
        if (!Tensors.Contains(name))
            throw new InvalidFileException(Tensors.SourcePath, $"missing (config.json declares quant_method {Config["quant_method"]})", name);
        Tensor t = Tensors.Read(name);
        if (!t.is_floating_point() || (shape.Length > 0 && !t.shape.SequenceEqual(shape)))
        {
            string found = $"{t.dtype} [{string.Join(", ", t.shape)}]";
            t.Dispose();
            throw new InvalidFileException(Tensors.ShardOf(name), $"expected a float tensor [{string.Join(", ", shape)}], found {found}", name);
        }
        using var raw = t;
        return t.to(float32, copy: true);
    }

    protected bool Has(string name) => Tensors.Contains(name);

    protected string ShardOf(string name) => Tensors.ShardOf(name);

    /// <summary>The [out, in] shape of a linear from config.json (the packed tensors must agree with it).</summary>
    protected (long Out, long In) LinearShape(string prefix)
    {
        // "model.layers.N.self_attn.q_proj" → "self_attn.q_proj": the one shape rule lives in ModelLayout.
        string[] parts = prefix.Split('.');
        string linear = parts.Length >= 2 ? $"{parts[^2]}.{parts[^1]}" : prefix;
        if (!ModelLayout.LayerLinears.Contains(linear)) throw new QuantSharpException($"'{prefix}' is not a decoder linear");
        return ModelLayout.LinearShape(ModelConfig, linear);
    }

    protected int ConfigInt(string key, int? fallback = null)
    {
        var node = Config[key];
        if (node is JsonValue v && v.TryGetValue(out int i)) return i;
        if (node is null && fallback is int f) return f;
        throw new InvalidFileException(ConfigPath, $"quantization_config.{key} must be an integer, found {node?.ToJsonString() ?? "nothing"}");
    }

    protected bool ConfigBool(string key, bool fallback)
    {
        var node = Config[key];
        if (node is null) return fallback;
        if (node is JsonValue v && v.TryGetValue(out bool b)) return b;
        throw new InvalidFileException(ConfigPath, $"quantization_config.{key} must be true or false, found {node.ToJsonString()}");
    }

    protected string ConfigString(string key, string? fallback = null)
    {
        var node = Config[key];
        if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
        if (node is null && fallback is not null) return fallback;
        throw new InvalidFileException(ConfigPath, $"quantization_config.{key} must be a string, found {node?.ToJsonString() ?? "nothing"}");
    }

    public void Dispose()
    {
        Tensors.Dispose();
        GC.SuppressFinalize(this);
    }
}
