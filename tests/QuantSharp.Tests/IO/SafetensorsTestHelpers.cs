using System.Buffers.Binary;
using System.Text;
using QuantSharp.IO;

namespace QuantSharp.Tests.IO;

/// <summary>Crafts raw safetensors bytes (for corrupt-file tests) and checks the shape of file errors.</summary>
internal static class SafetensorsTestHelpers
{
    /// <summary>Writes [u64 header length][header][data zeros] exactly as given, with no validation.</summary>
    public static string Craft(TempDir dir, string fileName, string header, int dataBytes)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = dir.File(fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>One header entry as JSON text.</summary>
    public static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    /// <summary>
    /// Asserts the action throws exactly InvalidFileException whose message names the file (by file name, so the
    /// check does not depend on how the path was spelled) and, when given, the tensor.
    /// </summary>
    public static InvalidFileException AssertInvalid(Action action, string fileName, string? tensor = null)
    {
        var e = Assert.Throws<InvalidFileException>(action);
        Assert.Contains(fileName, e.Message, StringComparison.Ordinal);
        if (tensor is not null)
        {
            Assert.Contains(tensor, e.Message, StringComparison.Ordinal);
            Assert.Equal(tensor, e.TensorName);
        }
        return e;
    }

    public static void OpenAndDispose(string path)
    {
        using var f = SafetensorsFile.Open(path);
    }

    public static void OpenCheckpointAndDispose(string path)
    {
        using var c = SafetensorsCheckpoint.Open(path);
    }
}
