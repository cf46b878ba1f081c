using System.Security.Cryptography;

namespace QuantSharp.Tests.Support;

/// <summary>Output folders compared byte for byte (the layer-wise mode promises the normal mode's exact files).</summary>
public static class FolderAssert
{
    /// <summary>The same file names, and every file's SHA-256 equal.</summary>
    public static void ByteIdentical(string expected, string actual)
    {
        var a = Directory.GetFiles(expected).Select(Path.GetFileName).Order().ToArray();
        var b = Directory.GetFiles(actual).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(a, b);
        foreach (var f in a)
            Assert.True(SHA256.HashData(File.ReadAllBytes(Path.Combine(expected, f!))).SequenceEqual(SHA256.HashData(File.ReadAllBytes(Path.Combine(actual, f!)))),
                $"{f} differs between {expected} and {actual}");
    }
}
