namespace QuantSharp.IO.Gguf;

/// <summary>
/// A tensor entry of a GGUF file. <see cref="Dims"/> are in ggml order (ne0 first: the row length, the fastest
/// varying index), the reverse of PyTorch's shape. <see cref="Offset"/> is relative to the start of the data section.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type, long Offset, long ByteCount)
{
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>The PyTorch shape: ggml dims reversed.</summary>
    public long[] TorchShape => Dims.Reverse().ToArray();
}
