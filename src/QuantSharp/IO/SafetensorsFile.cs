using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using QuantSharp.Backend;
using TorchSharp;

namespace QuantSharp.IO;

/// <summary>
/// One .safetensors file, opened for lazy reading: <see cref="Open"/> reads and validates only the header; each
/// <see cref="Read"/> reads just that tensor's bytes, so a single weight never costs the whole multi-GB shard.
/// Reads are positional, so one instance may be read from several threads.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafeTensorInfo> _byName;

    public string FilePath { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in header order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Entries in header order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>Bytes from the start of the file to the data buffer (8 + header length).</summary>
    public long DataStart { get; }

    public long FileLength { get; }

    private SafetensorsFile(string path, SafeFileHandle handle, long fileLength, long dataStart, SafetensorsHeader.Parsed header)
    {
        FilePath = path;
        _handle = handle;
        FileLength = fileLength;
        DataStart = dataStart;
        Metadata = header.Metadata;
        Tensors = header.Tensors;
        Names = header.Tensors.Select(t => t.Name).ToArray();
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public static SafetensorsFile Open(string path) => ReadOnlyFileHandle.Open(path, handle => ReadHeader(path, handle));

    private static SafetensorsFile ReadHeader(string path, SafeFileHandle handle)
    {
        long length = RandomAccess.GetLength(handle);
        if (length < 8) throw new InvalidFileException(path, $"file is {length} bytes, too short to hold the 8-byte header length");

        Span<byte> prefix = stackalloc byte[8];
        TensorBytes.ReadExactly(handle, 0, prefix, path, null);
        ulong claimed = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        // Both checks come before allocating: a corrupt length must not make us allocate gigabytes.
        if (claimed > SafetensorsHeader.MaxHeaderBytes)
            throw new InvalidFileException(path, $"header length {claimed} exceeds the {SafetensorsHeader.MaxHeaderBytes}-byte limit (not a safetensors file?)");
        if ((long)claimed > length - 8)
            throw new InvalidFileException(path, $"header length {claimed} is beyond the file's {length - 8} bytes after the length field (file truncated?)");

        var json = new byte[claimed];
        TensorBytes.ReadExactly(handle, 8, json, path, null);
        long dataStart = 8 + (long)claimed;
        var parsed = SafetensorsHeader.Parse(path, json, dataStart, length - dataStart);
        return new SafetensorsFile(path, handle, length, dataStart, parsed);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header entry; an unknown name is a file error naming both file and tensor.</summary>
    public SafeTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out SafeTensorInfo? info)
            ? info
            : throw new InvalidFileException(FilePath, "no such tensor in this file", name);

    /// <summary>
    /// A new CPU tensor with the stored dtype and shape (F8_* as uint8 raw bytes of the same shape). The caller owns
    /// it; it joins the caller's dispose scope like any new tensor.
    /// </summary>
    public torch.Tensor Read(string name)
    {
        SafeTensorInfo info = GetInfo(name);
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        TorchRuntime.EnsureNativeLoaded();
        var tensor = torch.empty(info.Shape, SafeDTypes.ToScalarType(info.DType), torch.CPU);
        try
        {
            TensorBytes.ReadInto(_handle, info.Begin, tensor, FilePath, name);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>The tensor's stored bytes, little-endian as on disk.</summary>
    public byte[] ReadBytes(string name)
    {
        SafeTensorInfo info = GetInfo(name);
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (info.ByteCount > Array.MaxLength)
            throw new InvalidFileException(FilePath, $"tensor is {info.ByteCount} bytes, too large for a byte array (use Read)", name);
        var bytes = new byte[info.ByteCount];
        TensorBytes.ReadExactly(_handle, info.Begin, bytes, FilePath, name);
        return bytes;
    }

    public void Dispose() => _handle.Dispose();
}
