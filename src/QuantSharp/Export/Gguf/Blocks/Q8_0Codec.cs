using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// Q8_0: blocks of 32 as [fp16 d][32 × int8 q], value = d·q, d = amax/127, q = round-half-away(x/d).
/// ggml ignores the importance matrix for this type (8 bits leave nothing to trade).
/// </summary>
internal sealed class Q8_0Codec : IGgmlBlockCodec
{
    public GgmlType Type => GgmlType.Q8_0;
    public int BlockValues => 32;
    public int BlockBytes => 34;

    public void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = blocks.Slice(b * 34, 34);
            float amax = 0;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            float d = amax / 127;
            float id = d != 0 ? 1 / d : 0;
            GgmlHalf.WriteF16(y, d);
            for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        for (int b = 0; b < row.Length / 32; b++)
        {
            var y = blocks.Slice(b * 34, 34);
            float d = GgmlHalf.ReadF16(y);
            for (int j = 0; j < 32; j++) row[b * 32 + j] = (sbyte)y[2 + j] * d;
        }
    }
}
