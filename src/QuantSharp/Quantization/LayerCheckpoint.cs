using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantSharp.IO;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// Makes a layer-wise quantization run resumable. After each decoder layer the folder receives
/// <c>layer-NNNNN.safetensors</c> (the layer's quantized weights, their group parameters and its calibrated activation
/// global scales), then <c>hidden-NNNNN.safetensors</c> (the calibration activations entering the next layer), and
/// last <c>state.json</c> (layers done, reports, warnings, fingerprints), each written to a temporary name and renamed,
/// so state.json only ever names files that are complete. Resuming reinstalls the finished layers from their files
/// (rotations are rebuilt from their seeds, exactly as the first run built them) and continues with the saved
/// activations: every later layer sees bit-for-bit what an uninterrupted run would have given it.
/// <para>A checkpoint records fingerprints of the model, the configuration and the calibration windows; a folder
/// written by a different run is refused, naming what differs.</para>
/// </summary>
public sealed class LayerCheckpoint
{
    public const string StateFile = "state.json";
    private const int FormatVersion = 1;

    public LayerCheckpoint(string directory, bool mustExist = false, string flag = "--checkpoint-dir")
    {
        Directory = directory;
        MustExist = mustExist;
        Flag = flag;
    }

    public string Directory { get; }

    /// <summary>True for <c>--resume</c>: a folder without a checkpoint is an error instead of a fresh start.</summary>
    public bool MustExist { get; }

    /// <summary>The flag that named the folder, for messages.</summary>
    public string Flag { get; }

    /// <summary>Layers restored from the folder by the last <see cref="Restore"/> (0 for a fresh start).</summary>
    public int ResumedLayers { get; private set; }

    /// <summary>Test hook: called after layer i's checkpoint is complete (a test throws here to simulate a kill).</summary>
    internal Action<int>? AfterLayerSaved { get; init; }

    private string StatePath => Path.Combine(Directory, StateFile);
    private string LayerPath(int i) => Path.Combine(Directory, $"layer-{i:D5}.safetensors");
    private string HiddenPath(int i) => Path.Combine(Directory, $"hidden-{i:D5}.safetensors");

    /// <summary>What identifies a run: the model (config.json, dtype, a hash of weights), the recipe, the calibration.</summary>
    internal sealed record Fingerprint(string Model, string Config, string Calibration);

    internal static Fingerprint Compute(CausalLM model, QuantizationConfig config, int[][]? calibration)
    {
        string modelPart;
        using (var scope = NewDisposeScope())
        {
            // config.json plus the bytes of two tensors the pipeline has not touched yet when this runs (the first and
            // last layers' q_proj): cheap even for 70B models, and different for two checkpoints of one architecture.
            var sb = new StringBuilder(model.Config.Raw.ToJsonString()).Append('|').Append(model.DType);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            sha.AppendData(Encoding.UTF8.GetBytes(sb.ToString()));
            foreach (var layer in new[] { model.Layers[0], model.Layers[^1] })
                sha.AppendData(layer.SelfAttn.QProj.Weight.detach().cpu().contiguous().bytes);
            modelPart = Convert.ToHexString(sha.GetHashAndReset())[..16];
        }
        string configPart;
        var culture = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            // The record's printed form lists every setting; the folder itself and the warning callback are no part of it.
            // Where activations are kept changes no number (the offload fallback after a CUDA OOM may switch it).
            configPart = Printed(config with { PerLinear = null }) + PerLinearPart(model, config);
        }
        finally { CultureInfo.CurrentCulture = culture; }
        string calibPart = "none";
        if (calibration is not null)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (var w in calibration)
            {
                sha.AppendData(BitConverter.GetBytes(w.Length));
                foreach (int t in w) sha.AppendData(BitConverter.GetBytes(t));
            }
            calibPart = $"{calibration.Length} windows, sha256 {Convert.ToHexString(sha.GetHashAndReset())[..16]}";
        }
        return new Fingerprint(modelPart, configPart, calibPart);
    }

    /// <summary>The record's printed form of the settings that change numbers (not the folder, callbacks or offloading).</summary>
    private static string Printed(QuantizationConfig c) =>
        (c with { Checkpoint = null, CpuOffloadActivations = false, Gptq = c.Gptq with { OnWarning = null, LayerName = "layer" } }).ToString();

    /// <summary>
    /// A recipe's per-linear configurations (--recipe): every distinct configuration printed, and which one each
    /// linear uses, so a checkpoint written for another recipe is refused like one of another flag configuration.
    /// </summary>
    private static string PerLinearPart(CausalLM model, QuantizationConfig config)
    {
        if (config.PerLinear is not { } perLinear) return "";
        var distinct = perLinear.Distinct.ToList();
        var sb = new StringBuilder("|per-linear:");
        foreach (var c in distinct) sb.Append('[').Append(Printed(c with { PerLinear = null })).Append(']');
        foreach (var name in Api.LinearNames.Of(model.Config))
        {
            var c = perLinear.Resolve(name);
            int index = distinct.FindIndex(d => ReferenceEquals(d, c));
            sb.Append(name).Append('=').Append(index >= 0 ? index.ToString(CultureInfo.InvariantCulture) : Printed(c with { PerLinear = null })).Append(';');
        }
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(sb.ToString()));
        return "|per-linear sha256 " + Convert.ToHexString(sha.GetHashAndReset())[..16];
    }

    /// <summary>
    /// Reinstalls the layers a previous run finished and returns how many; <paramref name="hidden"/> becomes the
    /// activations entering the first unfinished layer (untouched when nothing is restored).
    /// </summary>
    internal int Restore(CausalLM model, QuantizationConfig config, Fingerprint fingerprint, QuantizationResult result,
        Func<DecoderLayer, LayerQuantState> rebuildHooks, ref List<Tensor>? hidden, Device computeDevice)
    {
        ResumedLayers = 0;
        if (!File.Exists(StatePath))
        {
            if (MustExist)
                throw new QuantSharpException($"{Flag} {Directory}: no checkpoint there ({StateFile} missing); start the run with --checkpoint-dir.");
            System.IO.Directory.CreateDirectory(Directory);
            return 0;
        }
        JsonObject state;
        try { state = JsonNode.Parse(File.ReadAllText(StatePath)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new InvalidFileException(StatePath, "not a QuantSharp checkpoint state: " + e.Message); }
        if ((int?)state["version"] != FormatVersion)
            throw new InvalidFileException(StatePath, $"checkpoint format version {state["version"]}; this build reads version {FormatVersion}.");
        Check(state, "model", fingerprint.Model, "a different model (config.json, dtype or weights differ)");
        Check(state, "config", fingerprint.Config, "a different quantization configuration");
        Check(state, "calibration", fingerprint.Calibration, "different calibration data (--calib, --num-sequences, --seq-len or --seed)");

        int done = (int?)state["layers_done"] ?? 0;
        if (done < 0 || done > model.Layers.Count)
            throw new InvalidFileException(StatePath, $"layers_done {done} is outside 0..{model.Layers.Count}.");
        for (int i = 0; i < done; i++)
        {
            var layerState = rebuildHooks(model.Layers[i]);
            result.Layers.Add(layerState);
            RestoreLayer(model.Layers[i], layerState, model.DType, computeDevice);
        }
        foreach (var r in state["reports"]?.AsArray() ?? [])
            result.Reports.Add(new LayerQuantReport((string)r!["name"]!, (double)r["relative_error"]!, (bool)r["hessian_weighted"]!, (string?)r["warning"]));
        foreach (var w in state["warnings"]?.AsArray() ?? []) result.Warnings.Add((string)w!);

        if (done > 0 && done < model.Layers.Count && hidden is not null)
        {
            var restored = ReadHidden(done - 1, hidden[0].device);
            foreach (var t in hidden) t.Dispose();
            hidden = restored;
        }
        ResumedLayers = done;
        return done;
    }

    private void Check(JsonObject state, string key, string expected, string what)
    {
        string? found = (string?)state[key];
        if (found != expected)
            throw new QuantSharpException($"{Flag} {Directory}: this checkpoint was written for {what}; " +
                $"it has {key} '{found}', this run '{expected}'. Use another folder or delete it to start over.");
    }

    private void RestoreLayer(DecoderLayer layer, LayerQuantState state, ScalarType dtype, Device computeDevice)
    {
        string path = LayerPath(layer.Index);
        if (!File.Exists(path)) throw new InvalidFileException(path, "missing: the checkpoint's state.json counts this layer as done.");
        using var file = SafetensorsFile.Open(path);
        using var scope = NewDisposeScope();
        var meta = file.Metadata;
        foreach (var (name, linear) in layer.Linears())
        {
            string w = $"weight.{name}";
            if (!file.Contains(w)) throw new InvalidFileException(path, "tensor missing", w);
            linear.ReplaceWeight(file.Read(w).to(dtype).to(linear.Weight.device).DetachFromDisposeScope());
            if (file.Contains($"scale.{name}"))
            {
                var device = linear.Weight.device;
                Tensor? Opt(string n) => file.Contains(n) ? file.Read(n).to(device).DetachFromDisposeScope() : null;
                int groupSize = int.Parse(meta[$"group_size.{name}"], CultureInfo.InvariantCulture);
                int columns = int.Parse(meta[$"columns.{name}"], CultureInfo.InvariantCulture);
                state.WeightParams[name] = new GroupParams(Opt($"scale.{name}")!, Opt($"zero.{name}"), Opt($"scale_bytes.{name}"),
                    Opt($"global.{name}"), groupSize, columns);
            }
        }
        foreach (var (slot, hook) in state.ActivationQuantizers)
            if (file.Contains($"act_global.{slot}")) hook.Quantizer.Restore(file.Read($"act_global.{slot}").to(computeDevice));
        state.FreezeActivationScales();
    }

    private List<Tensor> ReadHidden(int layer, Device device)
    {
        string path = HiddenPath(layer);
        if (!File.Exists(path)) throw new InvalidFileException(path, "missing: the checkpoint's state.json needs the activations after this layer.");
        using var file = SafetensorsFile.Open(path);
        var list = new List<Tensor>();
        for (int b = 0; file.Contains($"batch.{b}"); b++)
        {
            using var scope = NewDisposeScope();
            list.Add(file.Read($"batch.{b}").to(device).DetachFromDisposeScope());
        }
        if (list.Count == 0) throw new InvalidFileException(path, "holds no activation batches.");
        return list;
    }

    /// <summary>Records layer <paramref name="index"/> as finished (its weights, parameters and the next layer's inputs).</summary>
    internal void Save(int index, DecoderLayer layer, LayerQuantState state, QuantizationResult result, Fingerprint fingerprint,
        IReadOnlyList<Tensor>? nextInputs)
    {
        long bytes = layer.Linears().Sum(l => l.Linear.Weight.numel() * l.Linear.Weight.element_size())
            + (nextInputs?.Sum(t => t.numel() * t.element_size()) ?? 0);
        DiskSpace.Require(Directory, bytes, Flag);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var meta = new Dictionary<string, string>();
        using (var scope = NewDisposeScope())
        {
            foreach (var (name, linear) in layer.Linears())
            {
                tensors.Add(new($"weight.{name}", linear.Weight.detach().cpu()));
                if (state.WeightParams.TryGetValue(name, out var p))
                {
                    tensors.Add(new($"scale.{name}", p.Scale.detach().cpu()));
                    if (p.Zero is not null) tensors.Add(new($"zero.{name}", p.Zero.detach().cpu()));
                    if (p.ScaleBytes is not null) tensors.Add(new($"scale_bytes.{name}", p.ScaleBytes.detach().cpu()));
                    if (p.GlobalScale is not null) tensors.Add(new($"global.{name}", p.GlobalScale.detach().cpu()));
                    meta[$"group_size.{name}"] = p.GroupSize.ToString(CultureInfo.InvariantCulture);
                    meta[$"columns.{name}"] = p.Columns.ToString(CultureInfo.InvariantCulture);
                }
            }
            foreach (var (slot, hook) in state.ActivationQuantizers)
                if (hook.GlobalScale is { } g) tensors.Add(new($"act_global.{slot}", g.detach().cpu()));
            SafetensorsWriter.Write(LayerPath(index), tensors, meta);
        }
        if (nextInputs is not null)
        {
            // Written one batch at a time (each copied to the CPU only while it is written).
            SafetensorsWriter.Write(HiddenPath(index), HiddenBatches(nextInputs));
        }

        var stateJson = new JsonObject
        {
            ["version"] = FormatVersion,
            ["model"] = fingerprint.Model,
            ["config"] = fingerprint.Config,
            ["calibration"] = fingerprint.Calibration,
            ["layers_done"] = index + 1,
            ["reports"] = new JsonArray(result.Reports.Select(r => (JsonNode)new JsonObject
            {
                ["name"] = r.Name, ["relative_error"] = r.RelativeError, ["hessian_weighted"] = r.HessianWeighted, ["warning"] = r.Warning,
            }).ToArray()),
            ["warnings"] = new JsonArray(result.Warnings.Select(w => (JsonNode)JsonValue.Create(w)!).ToArray()),
        };
        AtomicFile.WriteAllBytes(StatePath, Encoding.UTF8.GetBytes(stateJson.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
        // Only the newest activations are needed; older ones are dead weight once state.json moved past them.
        if (index > 0) AtomicFile.TryDelete(HiddenPath(index - 1));
        AfterLayerSaved?.Invoke(index);
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> HiddenBatches(IReadOnlyList<Tensor> batches)
    {
        for (int b = 0; b < batches.Count; b++)
        {
            // No dispose scope here: the consumer runs while this iterator is suspended.
            Tensor detached = batches[b].detach(), cpu = detached.cpu();
            yield return new($"batch.{b}", cpu);
            cpu.Dispose();
            detached.Dispose();
        }
    }
}
