using System.Globalization;

namespace QuantSharp.Quantizers;

/// <summary>
/// INC's double quantization of the per-group scales (use_double_quant, double_quant_dtype int, double_quant_bits,
/// double_quant_use_sym, double_quant_group_size; INC defaults 8 bits, asymmetric, groups of 256). The scales of a
/// tensor, flattened row-major, are cut into groups of <see cref="GroupSize"/> (the last one may be shorter); each
/// group gets a symmetric int scale absmax/(2^(b−1) − 1). "Asymmetric" is INC's variant: the mean of all the tensor's
/// scales is subtracted first (and added back after), rather than a zero point.
/// </summary>
public sealed record DoubleQuantSpec(int Bits = 8, bool Symmetric = false, int GroupSize = 256)
{
    public void Validate()
    {
        if (Bits is < 2 or > 8)
            throw new QuantSharpException($"--double-quant-bits {Bits.ToString(CultureInfo.InvariantCulture)}: expected 2 to 8.");
        if (GroupSize < 1)
            throw new QuantSharpException($"--double-quant-group-size {GroupSize.ToString(CultureInfo.InvariantCulture)}: must be positive.");
    }
}
