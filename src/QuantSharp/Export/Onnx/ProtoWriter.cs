using System.Buffers.Binary;
using System.Text;

namespace QuantSharp.Export.Onnx;

/// <summary>
/// The few pieces of the protobuf wire format an ONNX file needs: varints (wire type 0), 32-bit floats (type 5) and
/// length-delimited fields (type 2: strings, bytes, nested messages). A nested message is built in its own writer and
/// then written with its length, which is all the format asks for; no schema compiler or runtime library is involved.
/// </summary>
internal sealed class ProtoWriter
{
    private const int WireVarint = 0, WireFixed32 = 5, WireLengthDelimited = 2;
    private readonly MemoryStream _buffer = new();

    public long Length => _buffer.Length;

    /// <summary>The bytes written so far (a view, valid until the next write).</summary>
    public ReadOnlySpan<byte> Written => _buffer.GetBuffer().AsSpan(0, checked((int)_buffer.Length));

    public void Varint(int field, long value)
    {
        Tag(field, WireVarint);
        RawVarint((ulong)value); // negative int64/int32 values are written as 10-byte two's complement, as protobuf does
    }

    public void Float(int field, float value)
    {
        Tag(field, WireFixed32);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        _buffer.Write(b);
    }

    public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, WireLengthDelimited);
        RawVarint((ulong)value.Length);
        _buffer.Write(value);
    }

    public void Message(int field, ProtoWriter message) => Bytes(field, message.Written);

    /// <summary>A packed repeated int64 field (one length-delimited run of varints).</summary>
    public void PackedVarints(int field, IEnumerable<long> values)
    {
        var packed = new ProtoWriter();
        foreach (long v in values) packed.RawVarint((ulong)v);
        Bytes(field, packed.Written);
    }

    private void Tag(int field, int wireType) => RawVarint(((ulong)field << 3) | (uint)wireType);

    private void RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
