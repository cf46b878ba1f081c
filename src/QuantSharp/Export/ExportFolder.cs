using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Export;

/// <summary>A tensor to write; <paramref name="StoreAs"/> overrides the header dtype (raw bytes kept, e.g. F8_E4M3 held as uint8).</summary>
public readonly record struct ExportTensor(string Name, Tensor Tensor, SafeDType? StoreAs = null);

/// <summary>
/// The folder side of every export: a temporary sibling folder filled completely, then renamed into place, so a
/// reader sees the old folder or the complete new one and a failure leaves nothing half-written.
/// </summary>
public static class ExportFolder
{
    /// <summary>Shards stop growing past this many bytes (transformers' default shard size is of this order).</summary>
    public const long MaxShardBytes = 2L << 30;

    public static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"];

    /// <summary>Runs <paramref name="fill"/> on a temporary folder and moves it to <paramref name="outDir"/> (<see cref="AtomicFolder"/>).</summary>
    public static void Write(string outDir, bool overwrite, string flag, Action<string> fill) =>
        AtomicFolder.Write(outDir, overwrite, flag, fill);

    /// <summary>config.json of the model with dtype set and <paramref name="quantizationConfig"/> (null removes it).</summary>
    public static void WriteConfig(string dir, CausalLM model, JsonObject? quantizationConfig) =>
        WriteConfig(dir, model.Config, model.DType, quantizationConfig);

    /// <summary>config.json of a model that is not loaded (the low-memory streaming mode): its config and dtype.</summary>
    public static void WriteConfig(string dir, ModelConfig config, ScalarType dtype, JsonObject? quantizationConfig)
    {
        var cfg = (JsonObject)config.Raw.DeepClone();
        cfg["dtype"] = PseudoQuantExporter.DTypeName(dtype);
        cfg.Remove("torch_dtype");
        cfg.Remove("quantization_config");
        if (quantizationConfig is not null) cfg["quantization_config"] = quantizationConfig;
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public static void CopyTokenizer(string dir, CausalLM model) => CopyTokenizer(dir, model.SourceDirectory);

    public static void CopyTokenizer(string dir, string? sourceDirectory)
    {
        if (sourceDirectory is not { } src) return;
        foreach (string f in TokenizerFiles)
            if (File.Exists(Path.Combine(src, f))) File.Copy(Path.Combine(src, f), Path.Combine(dir, f), overwrite: true);
    }

    /// <summary>
    /// Writes tensors as model.safetensors, or as model-0000i-of-0000N shards plus an index when they exceed
    /// <see cref="MaxShardBytes"/>. Each tensor is copied to disk as it is enumerated.
    /// </summary>
    public static void WriteTensors(string dir, IEnumerable<ExportTensor> tensors)
    {
        var shards = new List<(string Path, List<string> Names)>();
        SafetensorsStreamWriter? current = null;
        var names = new List<string>();
        long total = 0;
        try
        {
            foreach (var t in tensors)
            {
                using var scope = NewDisposeScope();
                Tensor cpuT = t.Tensor.detach().cpu().contiguous();
                long bytes = cpuT.NumberOfElements * cpuT.element_size();
                if (current is not null && current.Count > 0 && current.DataBytes + bytes > MaxShardBytes)
                {
                    current.Commit(null);
                    current.Dispose();
                    shards.Add((current.FinalPath, names));
                    names = new List<string>();
                    current = null;
                }
                current ??= new SafetensorsStreamWriter(Path.Combine(dir, $"part-{shards.Count + 1}.safetensors"));
                if (t.StoreAs is { } dtype)
                {
                    if (SafeDTypes.ElementSize(dtype) != cpuT.element_size())
                        throw new ArgumentException($"tensor '{t.Name}': cannot store {cpuT.dtype} as {dtype}.");
                    current.Add(t.Name, dtype, cpuT.shape, cpuT.bytes);
                }
                else current.Add(t.Name, cpuT);
                names.Add(t.Name);
                total += bytes;
            }
            current ??= new SafetensorsStreamWriter(Path.Combine(dir, "part-1.safetensors"));
            current.Commit(null);
            current.Dispose();
            shards.Add((current.FinalPath, names));
            current = null;
        }
        finally
        {
            current?.Dispose();
        }
        if (shards.Count == 1)
        {
            File.Move(shards[0].Path, Path.Combine(dir, SafetensorsCheckpoint.SingleFileName));
            return;
        }
        var map = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < shards.Count; i++)
        {
            string name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            File.Move(shards[i].Path, Path.Combine(dir, name));
            map.AddRange(shards[i].Names.Select(n => new KeyValuePair<string, string>(n, name)));
        }
        ShardIndex.Write(Path.Combine(dir, ShardIndex.FileName), total, map);
    }
}
