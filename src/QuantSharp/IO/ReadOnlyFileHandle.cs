using Microsoft.Win32.SafeHandles;

namespace QuantSharp.IO;

/// <summary>
/// Opens a file for positional reads on behalf of a format reader (safetensors, GGUF): an open failure becomes an
/// <see cref="InvalidFileException"/> naming the file, and the handle is closed again when the header does not parse.
/// </summary>
internal static class ReadOnlyFileHandle
{
    public static T Open<T>(string path, Func<SafeFileHandle, T> readHeader)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            throw new InvalidFileException(path, $"cannot open: {e.Message}", null, e);
        }
        try
        {
            return readHeader(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
