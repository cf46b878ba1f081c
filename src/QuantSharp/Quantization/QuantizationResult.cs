using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>One linear's outcome: FP-Quant's relative error mean((Q−W)H(Q−W)ᵀ)/mean(WHWᵀ), or ‖Q−W‖²/‖W‖² without H.</summary>
public sealed record LayerQuantReport(string Name, double RelativeError, bool HessianWeighted, string? Warning);

/// <summary>
/// What quantization left in one decoder layer besides its (fake-quantized, rotated) weights: the online rotations
/// and activation quantizers per input slot, and the weight quantization parameters per linear (for packed export).
/// </summary>
public sealed class LayerQuantState(int index) : IDisposable
{
    public int Index { get; } = index;
    public Dictionary<string, BlockTransform> Transforms { get; } = new();
    public Dictionary<string, ActivationQuantizerHook> ActivationQuantizers { get; } = new();
    public Dictionary<string, GroupParams> WeightParams { get; } = new();
    /// <summary>KV-cache quantization of this layer's attention (null: the cache stays in the model dtype).</summary>
    public KvCacheHook? KvCache { get; set; }
    /// <summary>Other online state this layer owns (e.g. a restored FlatQuant layer's transforms), disposed with it.</summary>
    public List<IDisposable> Owned { get; } = new();

    /// <summary>Installs this state's rotations and activation quantizers on the layer's modules.</summary>
    public void Attach(DecoderLayer layer)
    {
        layer.SelfAttn.InputTransform = Transforms.TryGetValue("qkv", out var qkv) ? new TransformHook(qkv) : null;
        layer.Mlp.InputTransform = Transforms.TryGetValue("gate_up", out var gu) ? new TransformHook(gu) : null;
        Replace(layer.SelfAttn.OProj, Transforms.GetValueOrDefault("o"));
        Replace(layer.Mlp.DownProj, Transforms.GetValueOrDefault("down"));
        var qkvAct = ActivationQuantizers.GetValueOrDefault("qkv");
        var gateUpAct = ActivationQuantizers.GetValueOrDefault("gate_up");
        layer.SelfAttn.QProj.InputQuantizer = qkvAct;
        layer.SelfAttn.KProj.InputQuantizer = qkvAct;
        layer.SelfAttn.VProj.InputQuantizer = qkvAct;
        layer.SelfAttn.OProj.InputQuantizer = ActivationQuantizers.GetValueOrDefault("o");
        layer.Mlp.GateProj.InputQuantizer = gateUpAct;
        layer.Mlp.UpProj.InputQuantizer = gateUpAct;
        layer.Mlp.DownProj.InputQuantizer = ActivationQuantizers.GetValueOrDefault("down");
        layer.SelfAttn.KvHook = KvCache;
    }

    private static void Replace(DecoderLinear linear, BlockTransform? t)
    {
        linear.InputHooks.Clear();
        if (t is not null) linear.InputHooks.Add(new TransformHook(t));
    }

    public void FreezeActivationScales()
    {
        foreach (var a in ActivationQuantizers.Values) a.Freeze();
    }

    public void Dispose()
    {
        foreach (var t in Transforms.Values) t.Dispose();
        foreach (var a in ActivationQuantizers.Values) a.Dispose();
        foreach (var p in WeightParams.Values) p.Dispose();
        KvCache?.Dispose();
        foreach (var o in Owned) o.Dispose();
    }
}

/// <summary>A quantized model in memory (weights replaced, online hooks installed) and what the run measured.</summary>
public sealed class QuantizationResult(CausalLM model, QuantizationConfig config) : IDisposable
{
    public CausalLM Model { get; } = model;
    public QuantizationConfig Config { get; } = config;
    public List<LayerQuantState> Layers { get; } = new();
    public List<LayerQuantReport> Reports { get; } = new();
    public List<string> Warnings { get; } = new();
    public Dictionary<string, double> PhaseSeconds { get; } = new();
    public double Seconds { get; set; }

    /// <summary>
    /// GPU memory in use after each decoder layer (bytes; empty on CPU): the caching allocator's high-water mark, so a
    /// flat series means nothing leaks from layer to layer.
    /// </summary>
    public List<long> LayerDeviceMemoryBytes { get; } = new();

    /// <summary>Parameters of the quantized lm_head (quant_lm_head), or null when it stays float.</summary>
    public GroupParams? LmHeadParams { get; set; }

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        LmHeadParams?.Dispose();
    }
}

/// <summary>
/// The relative error reported per linear: FP-Quant's H-weighted "Relative MSE error" (one implementation, in
/// <see cref="Algorithms.Gptq.GptqSolver.RelativeError"/>) when a Hessian exists, else ‖Q−W‖²/‖W‖².
/// </summary>
public static class QuantError
{
    public static double Relative(Tensor w, Tensor q, Tensor? hessian)
    {
        using var scope = NewDisposeScope();
        var w32 = w.to(float32);
        var q32 = q.to(float32);
        if (hessian is not null) return Algorithms.Gptq.GptqSolver.RelativeError(q32, w32, hessian);
        return ((q32 - w32).pow(2).sum() / (w32.pow(2).sum() + 1e-12)).item<float>();
    }
}
