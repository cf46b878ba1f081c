using static TorchSharp.torch;

namespace QuantSharp.Quantizers;

/// <summary>
/// Quantizes 2-D tensors [rows, columns] (weights [out, in]; activations [tokens, hidden]) group-wise along the
/// columns. Parameters are computed once (<see cref="ComputeParams"/>) and then applied to the whole tensor or to any
/// run of its columns, which is what GPTQ's column loop needs. All outputs are float32 (codes: integer dtypes).
/// </summary>
public interface IWeightQuantizer
{
    QuantSpec Spec { get; }

    /// <summary>The element grid of this quantizer's rounding, as data (see <see cref="ElementGrid"/>).</summary>
    ElementGrid Grid { get; }

    /// <summary>
    /// Group parameters of <paramref name="w"/>. <paramref name="globalScale"/> overrides NVFP4's per-tensor global
    /// scale (e.g. one fused over q/k/v, or the whole weight's when <paramref name="w"/> is a slice); other formats
    /// ignore it. <paramref name="tensorName"/> names the tensor in errors.
    /// </summary>
    GroupParams ComputeParams(Tensor w, Tensor? globalScale = null, string? tensorName = null);

    /// <summary>NVFP4's global scale 448·6/max|w| ([1] float32); null for formats without one.</summary>
    Tensor? ComputeGlobalScale(Tensor w);

    /// <summary>
    /// Fake-quantizes columns [firstColumn, firstColumn + w.shape[1]) of the tensor <paramref name="p"/> describes:
    /// <paramref name="w"/> is [rows, k] (k = 1 for one GPTQ column) and each column uses its own group's params.
    /// </summary>
    Tensor QuantizeDequantize(Tensor w, GroupParams p, int firstColumn = 0);

    /// <summary>
    /// Integer codes of the columns: INT symmetric int8 in [−2^(b−1), 2^(b−1)−1], INT asymmetric uint8 in [0, 2^b−1],
    /// FP4 uint8 sign&lt;&lt;3|magnitude index, FP8 uint8 E4M3 bytes. Unpacked (one code per element).
    /// </summary>
    Tensor Codes(Tensor w, GroupParams p, int firstColumn = 0);

    /// <summary>Float32 values of codes produced by <see cref="Codes"/>.</summary>
    Tensor Dequantize(Tensor codes, GroupParams p, int firstColumn = 0);
}
