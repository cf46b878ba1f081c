using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace QuantSharp.IO;

/// <summary>
/// Writes one .safetensors file from tensors that arrive one at a time, copying each tensor's bytes to disk as soon
/// as it is added so the caller may dispose it straight away.
/// <para>
/// The header comes first in the format but is only known at the end, so the data is written after a reserved,
/// space-padded header area (trailing spaces are valid JSON and the conventional padding). If the final header does
/// not fit, or the file is small enough that the reserved space would be a visible waste, the data is copied once
/// into a compact file instead. Either way the result goes to <c>path.tmp</c> and is renamed over
/// <c>path</c> only by <see cref="Commit"/>; disposing without committing deletes the temporary files.
/// </para>
/// Data offsets are contiguous from 0 with no gaps, because the reference reader rejects files with holes.
/// </summary>
internal sealed class SafetensorsStreamWriter : IDisposable
{
    /// <summary>Room for about 2,000 header entries; a multi-GB shard never holds that many tensors.</summary>
    private const int HeaderReserve = 256 * 1024;

    /// <summary>Below this much data, compacting (one copy) is cheap and avoids 256 KB of padding.</summary>
    private const long CompactBelow = 64L << 20;

    private readonly string _path;
    private readonly string _tmp;
    private readonly string _compactTmp;
    private readonly List<SafeTensorInfo> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private FileStream? _stream;
    private bool _committed;

    public SafetensorsStreamWriter(string path)
    {
        _path = Path.GetFullPath(path);
        _tmp = AtomicFile.TempPathFor(_path);
        _compactTmp = _path + ".tmp.compact";
        _stream = new FileStream(_tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 20);
        _stream.Position = 8 + HeaderReserve;
    }

    public string FinalPath => _path;
    public int Count => _entries.Count;
    public long DataBytes { get; private set; }
    public IEnumerable<string> Names => _entries.Select(e => e.Name);

    /// <summary>Appends a tensor's bytes (copied to CPU/contiguous first if needed); the caller keeps ownership.</summary>
    public void Add(string name, torch.Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        SafeDType dtype = SafeDTypes.FromScalarType(tensor.dtype);
        long[] shape = tensor.shape;
        CheckName(name);

        using var noGrad = torch.no_grad();
        torch.Tensor source = tensor;
        torch.Tensor? owned = null;
        try
        {
            if (source.device_type != DeviceType.CPU)
            {
                owned = source.cpu();
                source = owned;
            }
            if (!source.is_contiguous())
            {
                var contiguous = source.contiguous();
                owned?.Dispose();
                owned = contiguous;
                source = contiguous;
            }
            FileStream stream = Stream();
            long begin = DataBytes;
            Guarded(() => TensorBytes.ForEachChunk(source, (chunk, _) => stream.Write(chunk)));
            Record(name, dtype, shape, begin, source.NumberOfElements * source.element_size());
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>Appends raw little-endian bytes, e.g. F8 values that torch cannot represent.</summary>
    public void Add(string name, SafeDType dtype, long[] shape, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        CheckName(name);
        long? expected = SafeDTypes.TryByteCount(dtype, shape);
        if (expected is null) throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] is invalid.", nameof(shape));
        if (expected.Value != data.Length)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes given, shape [{string.Join(", ", shape)}] of {dtype} needs {expected.Value}.", nameof(data));
        long begin = DataBytes;
        try
        {
            Stream().Write(data);
        }
        catch
        {
            Poison();
            throw;
        }
        Record(name, dtype, (long[])shape.Clone(), begin, data.Length);
    }

    private void CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name == SafetensorsHeader.MetadataKey) throw new ArgumentException($"'{name}' is reserved for metadata, not a tensor name.", nameof(name));
        if (_names.Contains(name)) throw new ArgumentException($"tensor '{name}' is written twice.", nameof(name));
    }

    private void Record(string name, SafeDType dtype, long[] shape, long begin, long length)
    {
        _names.Add(name);
        _entries.Add(new SafeTensorInfo(name, dtype, shape, begin, begin + length));
        DataBytes = begin + length;
        WriteFaults.At("tensor " + name, _path);
    }

    /// <summary>
    /// A write that fails partway leaves the file position past bytes no entry accounts for, so the writer is closed
    /// for good rather than letting a later Add produce wrong offsets.
    /// </summary>
    private void Guarded(Action write)
    {
        try
        {
            write();
        }
        catch
        {
            Poison();
            throw;
        }
    }

    private void Poison()
    {
        _stream?.Dispose();
        _stream = null;
    }

    private FileStream Stream()
    {
        ObjectDisposedException.ThrowIf(_stream is null, this);
        return _stream;
    }

    /// <summary>Writes the header and atomically replaces <see cref="FinalPath"/>. Metadata always has format=pt unless overridden.</summary>
    public void Commit(IReadOnlyDictionary<string, string>? metadata)
    {
        FileStream stream = Stream();
        byte[] header = BuildHeader(metadata);
        if (header.Length <= HeaderReserve && DataBytes >= CompactBelow)
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, HeaderReserve);
            stream.Position = 0;
            stream.Write(prefix);
            stream.Write(header);
            stream.Write(Spaces(HeaderReserve - header.Length));
            stream.Flush(flushToDisk: true);
            stream.Dispose();
            _stream = null;
        }
        else
        {
            using (var compact = new FileStream(_compactTmp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                compact.Write(prefix);
                compact.Write(header);
                stream.Flush();
                stream.Position = 8 + HeaderReserve;
                stream.CopyTo(compact, 1 << 20);
                compact.Flush(flushToDisk: true);
            }
            stream.Dispose();
            _stream = null;
            File.Move(_compactTmp, _tmp, overwrite: true);
        }
        File.Move(_tmp, _path, overwrite: true);
        _committed = true;
    }

    private byte[] BuildHeader(IReadOnlyDictionary<string, string>? metadata)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
            foreach (var (k, v) in metadata) merged[k] = v;

        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject(SafetensorsHeader.MetadataKey);
            foreach (var (k, v) in merged) w.WriteString(k, v);
            w.WriteEndObject();
            foreach (SafeTensorInfo e in _entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", SafeDTypes.HeaderName(e.DType));
                w.WriteStartArray("shape");
                foreach (long d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(e.Begin);
                w.WriteNumberValue(e.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        // Pad to a multiple of 8 so the data buffer (and 8-byte elements in it) start aligned.
        int padding = (int)((8 - buffer.Length % 8) % 8);
        buffer.Write(Spaces(padding));
        return buffer.ToArray();
    }

    private static byte[] Spaces(int count)
    {
        var bytes = new byte[count];
        Array.Fill(bytes, (byte)' ');
        return bytes;
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_committed)
        {
            AtomicFile.TryDelete(_tmp);
            AtomicFile.TryDelete(_compactTmp);
        }
    }
}
