using QuantSharp.IO;
using QuantSharp.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantSharp.Models;

/// <summary>
/// A Llama-family causal language model (Llama, Mistral, Qwen2, Qwen3), parameters named exactly as the Hugging Face
/// state dict (<c>model.layers.0.self_attn.q_proj.weight</c> …). Built straight from checkpoint tensors: no random
/// initialisation first, so a model needs only its own size in memory.
/// </summary>
public sealed class CausalLM : nn.Module<Tensor, Tensor>
{
    private readonly ModelBody _body;
    private DecoderLinear? _lmHead;
    private RotaryEmbedding _rope;

    public ModelConfig Config { get; }
    public ScalarType DType { get; }
    /// <summary>Where the parameters live (changes only through <see cref="MoveTo"/>).</summary>
    public Device Device { get; private set; }
    public string? SourceDirectory { get; init; }

    public TokenEmbedding EmbedTokens => _body.EmbedTokens;
    public IReadOnlyList<DecoderLayer> Layers => _body.Layers;
    public RmsNorm Norm => _body.Norm;
    /// <summary>The output projection weight: lm_head's own, or the embedding table when tied.</summary>
    public Tensor LmHeadWeight => _lmHead?.Weight ?? _body.EmbedTokens.Weight;
    public DecoderLinear? LmHead => _lmHead;

    private CausalLM(ModelConfig config, ModelBody body, DecoderLinear? lmHead, ScalarType dtype, Device device) : base("CausalLM")
    {
        Config = config;
        _body = body;
        _lmHead = lmHead;
        DType = dtype;
        Device = device;
        _rope = new RotaryEmbedding(config.Rope, config.HeadDim, device);
        register_module("model", body);
        if (lmHead is not null) register_module("lm_head", lmHead);
    }

    /// <summary>Loads config.json and the safetensors weights of a Hugging Face model folder.</summary>
    public static CausalLM Load(string modelDir, ScalarType dtype, Device device)
    {
        var config = ModelConfig.Load(modelDir);
        // Weight-only packed exports (gptq, awq, compressed-tensors int) load as plain models with dequantized weights.
        using (var packed = Packed.PackedCheckpoint.TryOpen(modelDir))
        {
            if (packed is not null)
            {
                if (packed.HasOnlineState)
                    throw new QuantSharpException($"{modelDir}: a {packed.Config["quant_method"]} checkpoint with online rotations or activation " +
                                                  "quantizers; load it with OnlineQuantization.Load (as quantsharp eval does), not as a plain model.");
                return FromCheckpoint(config, packed.Read, dtype, device, modelDir);
            }
        }
        using var ckpt = SafetensorsCheckpoint.Open(modelDir);
        return FromCheckpoint(config, name => ckpt.Contains(name) ? ckpt.Read(name) : null, dtype, device, modelDir);
    }

    /// <summary>
    /// Builds the model from a tensor source (name → CPU tensor, or null when absent). Each tensor is converted and
    /// moved as it arrives, so peak memory is the model plus one tensor.
    /// </summary>
    public static CausalLM FromCheckpoint(ModelConfig config, Func<string, Tensor?> read, ScalarType dtype, Device device, string source)
    {
        Tensor Need(string name, params long[] shape) =>
            Checked(read(name) ?? throw new InvalidFileException(source, "tensor missing from the checkpoint", name), name, shape, dtype, device, source);

        int h = config.HiddenSize;
        var embed = new TokenEmbedding("embed_tokens", Need("model.embed_tokens.weight", config.VocabSize, h));
        var layers = new List<DecoderLayer>(config.NumLayers);
        for (int i = 0; i < config.NumLayers; i++) layers.Add(BuildLayer(config, i, Need));
        var norm = new RmsNorm("norm", Need("model.norm.weight", h), config.RmsNormEps);
        DecoderLinear? lmHead = null;
        if (!config.TieWordEmbeddings)
            lmHead = new DecoderLinear("lm_head", Need("lm_head.weight", config.VocabSize, h), null);
        // A tied model's lm_head.weight, if present in the file, is ignored: the embedding table is the projection.
        var body = new ModelBody(embed, layers, norm);
        return new CausalLM(config, body, lmHead, dtype, device) { SourceDirectory = source };
    }

    /// <summary>
    /// Decoder layer <paramref name="index"/> from its checkpoint tensors (<paramref name="need"/>: full name and the
    /// shape config.json implies → the checked tensor). One rule for the loaded model and for the low-memory mode,
    /// which builds one layer at a time.
    /// </summary>
    internal static DecoderLayer BuildLayer(ModelConfig config, int index, Func<string, long[], Tensor> need)
    {
        int h = config.HiddenSize, hd = config.HeadDim, nh = config.NumHeads, nkv = config.NumKvHeads, ffn = config.IntermediateSize;
        string p = $"model.layers.{index}.";
        DecoderLinear Lin(string n, long outF, long inF, bool bias) =>
            new(n, need(p + PathOf(n) + ".weight", [outF, inF]), bias ? need(p + PathOf(n) + ".bias", [outF]) : null);
        var attn = new Attention(config,
            Lin("q_proj", nh * hd, h, config.QkvBias),
            Lin("k_proj", nkv * hd, h, config.QkvBias),
            Lin("v_proj", nkv * hd, h, config.QkvBias),
            Lin("o_proj", h, nh * hd, config.OutputBias),
            config.QkNorm ? new RmsNorm("q_norm", need(p + "self_attn.q_norm.weight", [hd]), config.RmsNormEps) : null,
            config.QkNorm ? new RmsNorm("k_norm", need(p + "self_attn.k_norm.weight", [hd]), config.RmsNormEps) : null);
        var mlp = new Mlp(
            Lin("gate_proj", ffn, h, config.MlpBias),
            Lin("up_proj", ffn, h, config.MlpBias),
            Lin("down_proj", h, ffn, config.MlpBias));
        return new DecoderLayer(index,
            new RmsNorm("input_layernorm", need(p + "input_layernorm.weight", [h]), config.RmsNormEps),
            attn,
            new RmsNorm("post_attention_layernorm", need(p + "post_attention_layernorm.weight", [h]), config.RmsNormEps),
            mlp);
    }

    /// <summary>
    /// A checkpoint tensor checked (shape as config.json implies, floating point, finite) and converted to the model's
    /// dtype and device; <paramref name="raw"/> is disposed unless it is returned. One rule for loading the model and
    /// for the low-memory streaming mode, which reads tensors one at a time.
    /// </summary>
    internal static Tensor Checked(Tensor raw, string name, long[] shape, ScalarType dtype, Device device, string source)
    {
        if (!raw.shape.SequenceEqual(shape))
        {
            string found = string.Join(",", raw.shape);
            raw.Dispose();
            throw new InvalidFileException(source, $"shape [{found}] does not match config.json's [{string.Join(",", shape)}]", name);
        }
        if (!raw.is_floating_point())
        {
            raw.Dispose();
            throw new InvalidFileException(source, $"expected a floating-point tensor, found {raw.dtype}", name);
        }
        if (!AllFinite(raw))
        {
            raw.Dispose();
            throw new InvalidFileException(source, "contains NaN or Inf values", name);
        }
        Tensor t = raw.to(dtype, device);
        if (!ReferenceEquals(t, raw)) raw.Dispose();
        return t;
    }

    /// <summary>
    /// True when no element is NaN or infinite, checked in blocks of rows: isfinite on a whole bf16 embedding table
    /// costs several times the table in temporaries (measured: +440 MiB for a 131 MB table).
    /// </summary>
    private static bool AllFinite(Tensor t)
    {
        const long blockElements = 1L << 22;
        long rows = t.dim() == 0 ? 1 : t.shape[0];
        long rowElements = rows == 0 ? 1 : Math.Max(1, t.numel() / rows);
        long blockRows = Math.Max(1, blockElements / rowElements);
        if (t.dim() == 0 || blockRows >= rows)
        {
            using var all = t.isfinite().all();
            return all.item<bool>();
        }
        for (long r0 = 0; r0 < rows; r0 += blockRows)
        {
            using var scope = NewDisposeScope();
            if (!t.narrow(0, r0, Math.Min(blockRows, rows - r0)).isfinite().all().item<bool>()) return false;
        }
        return true;
    }

    private static string PathOf(string linear) => linear is "gate_proj" or "up_proj" or "down_proj" ? "mlp." + linear : "self_attn." + linear;

    public override Tensor forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>Logits [batch, seq, vocab] for token ids [batch, seq]; with a cache, positions continue after it.</summary>
    public Tensor Forward(Tensor inputIds, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var hidden = ForwardHidden(inputIds, cache);
        return Logits(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>Final normed hidden states [batch, seq, hidden].</summary>
    public Tensor ForwardHidden(Tensor inputIds, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        long offset = cache?.Length ?? 0;
        var ids = inputIds.to(int64, Device);
        var x = _body.EmbedTokens.forward(ids);
        var (cos, sin) = Rotary(offset, ids.shape[1]);
        foreach (var layer in _body.Layers)
        {
            var next = layer.Forward(x, cos, sin, cache);
            x.Dispose();
            x = next;
        }
        return _body.Norm.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>cos/sin tables for positions offset..offset+length-1 in the model's dtype.</summary>
    public (Tensor Cos, Tensor Sin) Rotary(long offset, long length) => _rope.Table(offset, length, DType);

    public Tensor Logits(Tensor hidden) => nn.functional.linear(hidden, LmHeadWeight);

    /// <summary>
    /// Moves every parameter to <paramref name="device"/>, e.g. to evaluate on the GPU a model that was quantized with
    /// its layers streamed from CPU memory. Online quantization state follows the activations it sees.
    /// </summary>
    public void MoveTo(Device device)
    {
        if (Backend.Devices.Same(Device, device)) return;
        _body.EmbedTokens.MoveTo(device);
        foreach (var layer in _body.Layers) layer.MoveTo(device);
        _body.Norm.MoveTo(device);
        _lmHead?.MoveTo(device);
        _rope.Dispose();
        _rope = new RotaryEmbedding(Config.Rope, Config.HeadDim, device);
        Device = device;
    }

    /// <summary>
    /// Gives a tied model its own lm_head, a copy of the embedding table, so the output projection can be quantized
    /// while the embeddings stay as they are (what INC does for quant_lm_head on tied models). Returns the new lm_head;
    /// an untied model's lm_head is returned unchanged.
    /// </summary>
    public DecoderLinear UntieLmHead()
    {
        if (_lmHead is not null) return _lmHead;
        _lmHead = new DecoderLinear("lm_head", _body.EmbedTokens.Weight.detach().clone(), null);
        register_module("lm_head", _lmHead);
        return _lmHead;
    }

    /// <summary>Parameters keyed by their Hugging Face names (tied lm_head not repeated).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateDict()
    {
        foreach (var (name, p) in named_parameters()) yield return (name, p);
    }

    public long ParameterCount() => named_parameters().Sum(p => p.parameter.numel());

    protected override void Dispose(bool disposing)
    {
        if (disposing) _rope.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>The <c>model.</c> prefix of the state dict: embeddings, decoder layers, final norm.</summary>
internal sealed class ModelBody : nn.Module<Tensor, Tensor>
{
    public TokenEmbedding EmbedTokens { get; }
    public List<DecoderLayer> Layers { get; }
    public RmsNorm Norm { get; }

    public ModelBody(TokenEmbedding embed, List<DecoderLayer> layers, RmsNorm norm) : base("model")
    {
        EmbedTokens = embed;
        Layers = layers;
        Norm = norm;
        register_module("embed_tokens", embed);
        var list = new ModuleList<DecoderLayer>(layers.ToArray());
        register_module("layers", list);
        register_module("norm", norm);
    }

    public override Tensor forward(Tensor input) => throw new InvalidOperationException("use CausalLM.Forward");
}
