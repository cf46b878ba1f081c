using QuantSharp.Export.Onnx;

namespace QuantSharp.Tests.Export.Onnx;

/// <summary>Known-answer bytes of the protobuf wire format (protobuf's encoding guide examples).</summary>
public sealed class ProtoWriterTests
{
    [Fact]
    public void Varint_Field1Value150_Is08_96_01()
    {
        var w = new ProtoWriter();
        w.Varint(1, 150);
        Assert.Equal(new byte[] { 0x08, 0x96, 0x01 }, w.Written.ToArray());
    }

    [Fact]
    public void NegativeInt64_IsTenByteTwosComplement()
    {
        var w = new ProtoWriter();
        w.Varint(1, -1);
        Assert.Equal(new byte[] { 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, w.Written.ToArray());
    }

    [Fact]
    public void String_And_NestedMessage_AreLengthDelimited()
    {
        var inner = new ProtoWriter();
        inner.Varint(1, 150);
        var w = new ProtoWriter();
        w.String(2, "testing");
        w.Message(3, inner);
        Assert.Equal(new byte[] { 0x12, 0x07, (byte)'t', (byte)'e', (byte)'s', (byte)'t', (byte)'i', (byte)'n', (byte)'g', 0x1A, 0x03, 0x08, 0x96, 0x01 },
            w.Written.ToArray());
    }

    [Fact]
    public void Float_IsFixed32LittleEndian()
    {
        var w = new ProtoWriter();
        w.Float(2, 1.0f); // AttributeProto.f
        Assert.Equal(new byte[] { 0x15, 0x00, 0x00, 0x80, 0x3F }, w.Written.ToArray());
    }
}
