using System.Buffers.Binary;
using System.Text;

namespace QuantSharp.IO.Gguf;

/// <summary>
/// Sequential little-endian reads of a GGUF header that check every length against the bytes left in the file before
/// reading or allocating, so a corrupt or truncated file fails with a message saying what was being read and where.
/// </summary>
internal sealed class GgufHeaderReader
{
    private readonly Stream _stream;
    private readonly string _path;
    private readonly byte[] _scratch = new byte[8];

    public GgufHeaderReader(Stream stream, string path, long length)
    {
        _stream = stream;
        _path = path;
        Length = length;
    }

    public long Length { get; }
    public long Position { get; private set; }
    public long Remaining => Length - Position;

    public InvalidFileException Fail(string problem, string? tensor = null) => new(_path, problem, tensor);

    private void Need(long bytes, string what)
    {
        if (bytes < 0 || bytes > Remaining)
            throw Fail($"file truncated: {what} needs {bytes} bytes at offset {Position} but only {Remaining} remain");
    }

    private ReadOnlySpan<byte> Take(int bytes, string what)
    {
        Need(bytes, what);
        _stream.ReadExactly(_scratch, 0, bytes);
        Position += bytes;
        return _scratch.AsSpan(0, bytes);
    }

    public byte U8(string what) => Take(1, what)[0];
    public ushort U16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public float F32(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));
    public double F64(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));

    /// <summary>A gguf_string: uint64 byte length, then UTF-8 bytes (no terminator).</summary>
    public string String(string what)
    {
        ulong len = U64(what + " length");
        if (len > (ulong)Remaining)
            throw Fail($"file truncated: {what} claims {len} bytes at offset {Position} but only {Remaining} remain");
        var bytes = new byte[len];
        _stream.ReadExactly(bytes);
        Position += (long)len;
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidFileException(_path, $"{what} at offset {Position - (long)len} is not valid UTF-8", null, e);
        }
    }

    public void Skip(long bytes, string what)
    {
        Need(bytes, what);
        _stream.Seek(bytes, SeekOrigin.Current);
        Position += bytes;
    }
}
