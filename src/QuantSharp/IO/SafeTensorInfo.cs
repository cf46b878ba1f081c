namespace QuantSharp.IO;

/// <summary>
/// One tensor's header entry. <paramref name="Begin"/> and <paramref name="End"/> are absolute offsets in the file
/// (the header's data_offsets plus 8 plus the header length), so callers can seek without knowing the layout.
/// </summary>
public sealed record SafeTensorInfo(string Name, SafeDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Bytes the tensor occupies in the file.</summary>
    public long ByteCount => End - Begin;

    /// <summary>Product of the shape (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}
