using static TorchSharp.torch;

namespace QuantSharp.Models.Layers;

/// <summary>
/// Runs inside attention: on q, k, v ([batch, heads, seq, head_dim], after RoPE and before the KV cache) and on the
/// merged attention output before o_proj. KV-cache quantization and per-head transforms of q/k/v install one.
/// </summary>
public interface IAttentionHook
{
    (Tensor Q, Tensor K, Tensor V) AfterRope(Tensor q, Tensor k, Tensor v);

    /// <summary>The merged attention output [batch, seq, heads·head_dim] before o_proj.</summary>
    Tensor BeforeOutput(Tensor merged) => merged;
}
