using Microsoft.Win32.SafeHandles;

namespace QuantSharp.IO.Gguf;

/// <summary>
/// A GGUF file (version 2 or 3) opened for lazy reading: <see cref="Open"/> reads and validates the header, metadata
/// and tensor table; each <see cref="ReadBytes"/> reads one tensor's raw blocks. Validation mirrors the safetensors
/// reader: bad magic or version, a truncated header, an unknown tensor type, a row that is not whole blocks, a tensor
/// whose byte count (implied by its type and shape) runs past the file or into the next tensor — each is an
/// <see cref="InvalidFileException"/> naming the file and, where one is at fault, the tensor.
/// </summary>
public sealed class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;
    public const uint DefaultAlignment = 32;
    private const int MaxDims = 4;

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private readonly Dictionary<string, GgufValue> _metadata;

    public string FilePath { get; }
    public uint Version { get; }
    public long FileLength { get; }
    public long DataStart { get; }
    public uint Alignment { get; }
    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> MetadataKeys { get; }
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;
    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    private GgufFile(string path, SafeFileHandle handle, uint version, long length, long dataStart, uint alignment,
        List<string> keys, Dictionary<string, GgufValue> metadata, List<GgufTensorInfo> tensors)
    {
        FilePath = path;
        _handle = handle;
        Version = version;
        FileLength = length;
        DataStart = dataStart;
        Alignment = alignment;
        MetadataKeys = keys;
        _metadata = metadata;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public static GgufFile Open(string path) => ReadOnlyFileHandle.Open(path, handle => ReadHeader(path, handle));

    private static GgufFile ReadHeader(string path, SafeFileHandle handle)
    {
        long length = RandomAccess.GetLength(handle);
        // A second, short-lived stream for the sequential header parse; the handle stays for positional tensor reads.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16);
        var r = new GgufHeaderReader(stream, path, length);
        if (length < 4) throw r.Fail($"file is {length} bytes, too short for the GGUF magic");
        uint magic = r.U32("magic");
        if (magic != Magic)
            throw r.Fail($"bad magic 0x{magic:X8} (expected 0x{Magic:X8}, \"GGUF\"): not a GGUF file");
        uint version = r.U32("version");
        if (version is not (2 or 3))
            throw r.Fail($"unsupported GGUF version {version} (supported: 2, 3)");
        ulong tensorCount = r.U64("tensor count");
        ulong kvCount = r.U64("metadata count");
        // Each entry takes at least a few bytes, so a count above the file size is corruption, not a big model.
        if (tensorCount > (ulong)length || kvCount > (ulong)length)
            throw r.Fail($"header claims {tensorCount} tensors and {kvCount} metadata entries, impossible in {length} bytes");

        var keys = new List<string>();
        var metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = r.String($"metadata key #{i}");
            var type = (GgufValueType)r.U32($"type of metadata '{key}'");
            var value = ReadValue(r, type, $"metadata '{key}'");
            if (!metadata.TryAdd(key, value)) throw r.Fail($"metadata key '{key}' appears twice");
            keys.Add(key);
        }

        uint alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out var a))
        {
            if (a.Type != GgufValueType.UInt32 || (uint)a.Value == 0 || !uint.IsPow2((uint)a.Value))
                throw r.Fail($"general.alignment must be a power-of-two uint32, found {a}");
            alignment = (uint)a.Value;
        }

        var tensors = new List<GgufTensorInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = r.String($"name of tensor #{i}");
            if (!names.Add(name)) throw r.Fail("tensor name appears twice", name);
            uint nDims = r.U32($"tensor '{name}' dimension count");
            if (nDims is 0 or > MaxDims) throw r.Fail($"{nDims} dimensions (ggml allows 1..{MaxDims})", name);
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64($"tensor '{name}' dimension {d}");
                if (ne == 0 || ne > long.MaxValue / 16) throw r.Fail($"dimension {d} is {ne}", name);
                dims[d] = (long)ne;
            }
            var type = (GgmlType)r.U32($"tensor '{name}' type");
            ulong offset = r.U64($"tensor '{name}' offset");
            var geometry = GgmlTypeSizes.Geometry(type) ?? throw r.Fail($"unsupported tensor type {GgmlTypeSizes.Name(type)}", name);
            if (dims[0] % geometry.BlockValues != 0)
                throw r.Fail($"row length {dims[0]} is not a multiple of {GgmlTypeSizes.Name(type)}'s block of {geometry.BlockValues} values", name);
            if (offset % alignment != 0) throw r.Fail($"offset {offset} is not a multiple of the alignment {alignment}", name);
            long elements = 1;
            foreach (long ne in dims)
            {
                if (elements > long.MaxValue / ne) throw r.Fail($"shape [{string.Join(",", dims)}] overflows", name);
                elements *= ne;
            }
            long bytes = elements / geometry.BlockValues * geometry.BlockBytes;
            tensors.Add(new GgufTensorInfo(name, dims, type, (long)Math.Min(offset, long.MaxValue), bytes));
        }

        long dataStart = AlignUp(r.Position, alignment);
        long dataBytes = length - dataStart;
        GgufTensorInfo? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Offset))
        {
            string what = $"{GgmlTypeSizes.Name(t.Type)} [{string.Join(",", t.Dims)}] needs {t.ByteCount} bytes at data offset {t.Offset}";
            if (t.Offset > dataBytes || t.ByteCount > dataBytes - t.Offset)
                throw r.Fail($"{what}, but the data section has only {Math.Max(0, dataBytes)} bytes (file truncated?)", t.Name);
            if (previous is not null && previous.Offset + previous.ByteCount > t.Offset)
                throw r.Fail($"{GgmlTypeSizes.Name(previous.Type)} [{string.Join(",", previous.Dims)}] needs {previous.ByteCount} bytes " +
                             $"at data offset {previous.Offset}, which runs into tensor '{t.Name}' at {t.Offset}: its byte count disagrees with its type and shape", previous.Name);
            previous = t;
        }
        return new GgufFile(path, handle, version, length, dataStart, alignment, keys, metadata, tensors);
    }

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    private static GgufValue ReadValue(GgufHeaderReader r, GgufValueType type, string what) => type switch
    {
        GgufValueType.Array => ReadArray(r, what),
        _ => new GgufValue(type, ReadScalar(r, type, what)),
    };

    private static object ReadScalar(GgufHeaderReader r, GgufValueType type, string what) => type switch
    {
        GgufValueType.UInt8 => r.U8(what),
        GgufValueType.Int8 => (sbyte)r.U8(what),
        GgufValueType.UInt16 => r.U16(what),
        GgufValueType.Int16 => (short)r.U16(what),
        GgufValueType.UInt32 => r.U32(what),
        GgufValueType.Int32 => (int)r.U32(what),
        GgufValueType.Float32 => r.F32(what),
        GgufValueType.Bool => ReadBool(r, what),
        GgufValueType.String => r.String(what),
        GgufValueType.UInt64 => r.U64(what),
        GgufValueType.Int64 => (long)r.U64(what),
        GgufValueType.Float64 => r.F64(what),
        _ => throw r.Fail($"{what} has unknown value type {(uint)type}"),
    };

    private static bool ReadBool(GgufHeaderReader r, string what)
    {
        byte b = r.U8(what);
        return b switch { 0 => false, 1 => true, _ => throw r.Fail($"{what} is a bool stored as {b} (must be 0 or 1)") };
    }

    private static GgufValue ReadArray(GgufHeaderReader r, string what)
    {
        var elementType = (GgufValueType)r.U32(what + " element type");
        ulong count = r.U64(what + " element count");
        // Strings take at least their 8-byte length; other elements at least one byte.
        ulong minBytes = elementType == GgufValueType.String ? 8UL : 1UL;
        if (count > (ulong)r.Remaining / minBytes)
            throw r.Fail($"file truncated: {what} claims {count} elements but only {r.Remaining} bytes remain");
        if (elementType == GgufValueType.Array) throw r.Fail($"{what} is an array of arrays, which QuantSharp does not read");
        Array values = elementType switch
        {
            GgufValueType.UInt8 => new byte[count],
            GgufValueType.Int8 => new sbyte[count],
            GgufValueType.UInt16 => new ushort[count],
            GgufValueType.Int16 => new short[count],
            GgufValueType.UInt32 => new uint[count],
            GgufValueType.Int32 => new int[count],
            GgufValueType.Float32 => new float[count],
            GgufValueType.Bool => new bool[count],
            GgufValueType.String => new string[count],
            GgufValueType.UInt64 => new ulong[count],
            GgufValueType.Int64 => new long[count],
            GgufValueType.Float64 => new double[count],
            _ => throw r.Fail($"{what} has unknown element type {(uint)elementType}"),
        };
        for (long i = 0; i < (long)count; i++) values.SetValue(ReadScalar(r, elementType, $"{what}[{i}]"), i);
        return new GgufValue(GgufValueType.Array, values, elementType);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public GgufTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out var info) ? info : throw new InvalidFileException(FilePath, "no such tensor in this file", name);

    /// <summary>The tensor's raw bytes (blocks, little-endian) as stored.</summary>
    public byte[] ReadBytes(string name)
    {
        var info = GetInfo(name);
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (info.ByteCount > Array.MaxLength)
            throw new InvalidFileException(FilePath, $"tensor is {info.ByteCount} bytes, too large to read at once", name);
        var bytes = new byte[info.ByteCount];
        TensorBytes.ReadExactly(_handle, DataStart + info.Offset, bytes, FilePath, name);
        return bytes;
    }

    // Typed metadata access: a missing or mistyped key names the file and the key.

    public bool Has(string key) => _metadata.ContainsKey(key);

    public GgufValue Require(string key) =>
        _metadata.TryGetValue(key, out var v) ? v : throw new InvalidFileException(FilePath, $"metadata key '{key}' is missing");

    public string RequireString(string key) => Expect<string>(key, GgufValueType.String);

    public string? OptionalString(string key) => Has(key) ? RequireString(key) : null;

    /// <summary>Any integer type as a long (writers differ in which integer width they use).</summary>
    public long RequireInteger(string key) => OptionalInteger(key) ?? throw new InvalidFileException(FilePath, $"metadata key '{key}' is missing");

    public long? OptionalInteger(string key)
    {
        if (!_metadata.TryGetValue(key, out var v)) return null;
        return v.Value switch
        {
            byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint u => u, int i => i, ulong ul => (long)ul, long l => l,
            _ => throw new InvalidFileException(FilePath, $"metadata key '{key}' must be an integer, found {v}"),
        };
    }

    public double? OptionalReal(string key)
    {
        if (!_metadata.TryGetValue(key, out var v)) return null;
        return v.Value switch
        {
            float f => f, double d => d,
            _ => throw new InvalidFileException(FilePath, $"metadata key '{key}' must be a float, found {v}"),
        };
    }

    public T[] RequireArray<T>(string key, GgufValueType elementType)
    {
        var v = Require(key);
        if (v.Type != GgufValueType.Array || v.ElementType != elementType)
            throw new InvalidFileException(FilePath, $"metadata key '{key}' must be an array of {elementType}, found {v}");
        return (T[])v.Value;
    }

    private T Expect<T>(string key, GgufValueType type)
    {
        var v = Require(key);
        if (v.Type != type) throw new InvalidFileException(FilePath, $"metadata key '{key}' must be {type}, found {v}");
        return (T)v.Value;
    }

    public void Dispose() => _handle.Dispose();
}
