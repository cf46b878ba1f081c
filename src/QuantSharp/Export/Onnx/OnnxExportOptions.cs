using System.Globalization;

namespace QuantSharp.Export.Onnx;

/// <summary>
/// What the decoder linears become: MatMulNBits with <see cref="Bits"/>-bit INT codes in blocks of
/// <see cref="BlockSize"/> input columns (symmetric, or asymmetric with zero points), or plain float MatMul when
/// <see cref="Float"/>. Embeddings, norms and lm_head always stay float32.
/// </summary>
public sealed record OnnxExportOptions(int Bits = 4, int BlockSize = 128, bool Symmetric = true, bool Float = false)
{
    /// <summary>Throws naming the flag when MatMulNBits cannot express the choice.</summary>
    public void Validate()
    {
        if (Float) return;
        if (!MatMulNBitsPacking.IsSupportedBits(Bits))
            throw new QuantSharpException($"--bits {Bits.ToString(CultureInfo.InvariantCulture)}: ONNX export writes 4- or 8-bit MatMulNBits weights; use --bits 4 or --bits 8 (or --float).");
        if (BlockSize < 16 || (BlockSize & (BlockSize - 1)) != 0)
            throw new QuantSharpException($"--block-size {BlockSize.ToString(CultureInfo.InvariantCulture)}: MatMulNBits needs a power of two of at least 16 (e.g. 32, 64, 128).");
    }

    /// <summary>Short label, e.g. "int4-b128-sym", "int8-b32-asym" or "float".</summary>
    public string Label => Float ? "float" : $"int{Bits}-b{BlockSize}-{(Symmetric ? "sym" : "asym")}";
}
