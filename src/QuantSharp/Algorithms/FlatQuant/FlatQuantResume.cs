using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Models;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// --resume DIR: each calibrated layer's trained parameters go to DIR/layer-N.safetensors as soon as the layer is
/// done (written to a temporary name, then renamed, so a crash never leaves half a file). DIR/manifest.json records
/// the model's shape and the recipe; a folder written for another model or recipe is refused with the field that differs.
/// </summary>
public sealed class FlatQuantResume
{
    private const string ManifestName = "manifest.json";
    private readonly string _dir;

    private FlatQuantResume(string dir) { _dir = dir; }

    public static FlatQuantResume Open(string dir, CausalLM model, FlatQuantOptions o, int seqLen, int numSequences)
    {
        var c = model.Config;
        var expected = new JsonObject
        {
            ["model_type"] = c.ModelType, ["hidden_size"] = c.HiddenSize, ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = model.Layers.Count, ["num_attention_heads"] = c.NumHeads,
            ["num_key_value_heads"] = c.NumKvHeads, ["head_dim"] = c.HeadDim,
            ["model_fingerprint"] = Fingerprint(model),
            ["w_bits"] = o.WBits, ["a_bits"] = o.ABits, ["k_bits"] = o.KvCache?.KBits ?? 16, ["v_bits"] = o.KvCache?.VBits ?? 16,
            ["lwc"] = o.Lwc, ["lac"] = o.Lac, ["add_diag"] = o.AddDiag, ["epochs"] = o.Epochs, ["lr"] = o.LearningRate,
            ["num_sequences"] = numSequences, ["seq_len"] = seqLen, ["seed"] = o.Seed,
            ["parameterization"] = o.Parameterization.ToString(),
        };
        string path = Path.Combine(dir, ManifestName);
        if (File.Exists(path))
        {
            JsonObject found;
            try { found = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException e) { throw new QuantSharpException($"--resume {dir}: {ManifestName} is not valid JSON ({e.Message})."); }
            foreach (var (key, value) in expected)
            {
                string want = value!.ToJsonString(), got = found[key]?.ToJsonString() ?? "(missing)";
                if (want != got)
                    throw new QuantSharpException($"--resume {dir}: written for another model or recipe ({key} is {got} there, {want} here); " +
                                                  "use a fresh folder.");
            }
        }
        else
        {
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
                throw new QuantSharpException($"--resume {dir}: the folder exists, is not empty and has no {ManifestName}; use a fresh folder.");
            Directory.CreateDirectory(dir);
            File.WriteAllText(path, expected.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return new FlatQuantResume(dir);
    }

    /// <summary>A cheap identity of the weights: sums of the first layer's q_proj and the final norm.</summary>
    private static string Fingerprint(CausalLM model)
    {
        using var scope = NewDisposeScope();
        double a = model.Layers[0].SelfAttn.QProj.Weight.to(ScalarType.Float64).abs().sum().item<double>();
        double b = model.Norm.Weight.to(ScalarType.Float64).sum().item<double>();
        return $"{a:R}:{b:R}";
    }

    private string LayerPath(int layer) => Path.Combine(_dir, $"layer-{layer}.safetensors");

    public Dictionary<string, Tensor>? TryLoad(int layer)
    {
        string path = LayerPath(layer);
        if (!File.Exists(path)) return null;
        using var f = SafetensorsFile.Open(path);
        return f.Names.ToDictionary(n => n, n => f.Read(n));
    }

    public void Save(int layer, Dictionary<string, Tensor> parameters)
    {
        string path = LayerPath(layer), tmp = path + ".tmp";
        SafetensorsWriter.Write(tmp, parameters.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu().contiguous())));
        File.Move(tmp, path, overwrite: true);
    }
}
