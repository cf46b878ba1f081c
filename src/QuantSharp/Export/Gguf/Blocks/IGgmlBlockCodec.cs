using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf.Blocks;

/// <summary>
/// One ggml tensor type: how a row of float values becomes blocks of bytes and back. Rows are whole blocks; ggml
/// quantizes row by row (several rules look at statistics of the whole row or super-block, not just one block).
/// </summary>
public interface IGgmlBlockCodec
{
    GgmlType Type { get; }
    int BlockValues { get; }
    int BlockBytes { get; }

    /// <summary>
    /// Quantizes one row. <paramref name="importance"/> is either empty or one weight per value of the row (an
    /// importance matrix column weight, Σx² of the activations feeding that input column); types that ignore it say so.
    /// </summary>
    void Quantize(ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> blocks);

    void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row);
}

/// <summary>The codec of each type QuantSharp writes.</summary>
public static class GgmlBlockCodecs
{
    private static readonly Dictionary<GgmlType, IGgmlBlockCodec> ByType = new IGgmlBlockCodec[]
    {
        new F32Codec(), new F16Codec(), new BF16Codec(), new Q8_0Codec(), new Q4_0Codec(), new Q4_1Codec(),
        new Q5_0Codec(), new Q4_KCodec(), new IQ4_NLCodec(), new MxFp4Codec(),
    }.ToDictionary(c => c.Type);

    public static bool IsSupported(GgmlType type) => ByType.ContainsKey(type);

    public static IGgmlBlockCodec For(GgmlType type) =>
        ByType.TryGetValue(type, out var c) ? c : throw new QuantSharpException($"ggml type {GgmlTypeSizes.Name(type)} is not supported by QuantSharp");

    /// <summary>Quantizes rows [rows, rowLength] (row-major) into a contiguous block buffer.</summary>
    public static byte[] QuantizeRows(IGgmlBlockCodec codec, ReadOnlySpan<float> values, long rowLength, ReadOnlySpan<float> importance)
    {
        long rows = values.Length / rowLength;
        int rowBytes = (int)GgmlTypeSizes.RowBytes(codec.Type, rowLength);
        var output = new byte[rows * rowBytes];
        for (long r = 0; r < rows; r++)
            codec.Quantize(values.Slice((int)(r * rowLength), (int)rowLength), importance,
                output.AsSpan((int)(r * rowBytes), rowBytes));
        return output;
    }

    public static float[] DequantizeRows(IGgmlBlockCodec codec, ReadOnlySpan<byte> blocks, long elements, long rowLength)
    {
        var output = new float[elements];
        int rowBytes = (int)GgmlTypeSizes.RowBytes(codec.Type, rowLength);
        long rows = elements / rowLength;
        for (long r = 0; r < rows; r++)
            codec.Dequantize(blocks.Slice((int)(r * rowBytes), rowBytes), output.AsSpan((int)(r * rowLength), (int)rowLength));
        return output;
    }
}
