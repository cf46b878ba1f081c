using System.Buffers.Binary;
using System.Text;
using QuantSharp.IO;
using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf;

/// <summary>
/// Writes a GGUF v3 container: header (magic, version, tensor and metadata counts), typed metadata, the tensor table
/// (name, ggml dims, type, offset into the data section), padding to the alignment, then each tensor's blocks, each
/// starting on an alignment boundary. Tensor bytes are produced one tensor at a time while writing, so memory holds
/// one quantized tensor, not the model. The file is written to a temporary name and renamed when complete.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, GgufValue Value)> _metadata = [];
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public uint Alignment { get; }

    public GgufWriter(uint alignment = GgufFile.DefaultAlignment)
    {
        if (alignment == 0 || !uint.IsPow2(alignment)) throw new ArgumentException($"alignment {alignment} must be a power of two");
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment) Add("general.alignment", GgufValue.Of(alignment));
    }

    public IReadOnlyList<(string Name, long[] Dims, GgmlType Type)> Tensors => _tensors.Select(t => (t.Name, t.Dims, t.Type)).ToList();

    public void Add(string key, GgufValue value)
    {
        if (!_keys.Add(key)) throw new ArgumentException($"metadata key '{key}' added twice");
        _metadata.Add((key, value));
    }

    /// <summary>
    /// Queues a tensor of PyTorch shape <paramref name="torchShape"/> whose bytes <paramref name="produce"/> returns
    /// when the data section is written (exactly the byte count its type and shape imply).
    /// </summary>
    public void AddTensor(string name, long[] torchShape, GgmlType type, Func<byte[]> produce)
    {
        if (!_names.Add(name)) throw new ArgumentException($"tensor '{name}' added twice");
        long[] dims = torchShape.Reverse().ToArray();
        long elements = dims.Aggregate(1L, (a, b) => a * b);
        long bytes = GgmlTypeSizes.RowBytes(type, dims[0]) * (elements / dims[0]);
        _tensors.Add(new PendingTensor(name, dims, type, bytes, produce));
    }

    public void Write(string path)
    {
        IO.DiskSpace.Require(path, _tensors.Sum(t => t.ByteCount), "--out");
        string tmp = AtomicFile.TempPathFor(path);
        try
        {
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                WriteTo(stream);
                WriteFaults.At("gguf", path);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            AtomicFile.TryDelete(tmp);
            throw;
        }
    }

    public void WriteTo(Stream stream)
    {
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (long d in t.Dims) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset = GgufFile.AlignUp(offset + t.ByteCount, Alignment);
        }
        w.Flush();
        Pad(stream);
        foreach (var t in _tensors)
        {
            byte[] data = t.Produce();
            if (data.LongLength != t.ByteCount)
                throw new InvalidOperationException($"tensor '{t.Name}': produced {data.LongLength} bytes, its type and shape need {t.ByteCount}");
            stream.Write(data);
            Pad(stream);
        }
    }

    private void Pad(Stream stream)
    {
        long pad = GgufFile.AlignUp(stream.Position, Alignment) - stream.Position;
        for (long i = 0; i < pad; i++) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        if (v.Type != GgufValueType.Array)
        {
            WriteScalar(w, v.Type, v.Value);
            return;
        }
        var items = (Array)v.Value;
        w.Write((uint)v.ElementType);
        w.Write((ulong)items.Length);
        foreach (object item in items) WriteScalar(w, v.ElementType, item);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((byte)((bool)value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            default: throw new ArgumentException($"cannot write a GGUF value of type {type} here");
        }
    }

    private sealed record PendingTensor(string Name, long[] Dims, GgmlType Type, long ByteCount, Func<byte[]> Produce);
}
