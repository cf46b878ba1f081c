namespace QuantSharp.IO;

/// <summary>
/// Write-then-rename helpers. A reader (or a crash) must only ever see the old file or the complete new one, never a
/// half-written checkpoint that parses as truncated.
/// </summary>
public static class AtomicFile
{
    public static string TempPathFor(string path) => path + ".tmp";

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        string tmp = TempPathFor(path);
        try
        {
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            WriteFaults.At("file", path);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>UTF-8 text (JSON reports, manifests) through the same temporary file and rename.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Best-effort cleanup on a failure path; the original exception matters more than this one.</summary>
    public static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
