namespace QuantSharp.IO;

/// <summary>
/// The folder form of write-then-rename: a temporary sibling folder is filled completely and then renamed into place,
/// so a reader (or the next run) sees the old folder or the complete new one, and a failure leaves nothing at the
/// target. Every writer of a model folder goes through here (--save, export, synth).
/// </summary>
public static class AtomicFolder
{
    /// <summary>
    /// Runs <paramref name="fill"/> on a fresh temporary sibling of <paramref name="outDir"/> and moves it into place.
    /// An existing non-empty folder is refused unless <paramref name="overwrite"/>; it is then moved aside first and
    /// deleted only once the new folder is in place.
    /// </summary>
    public static void Write(string outDir, bool overwrite, string flag, Action<string> fill)
    {
        if (File.Exists(outDir)) throw new QuantSharpException($"{flag} {outDir}: a file of that name exists.");
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !overwrite)
            throw new QuantSharpException($"{flag} {outDir}: folder exists and is not empty (pass --overwrite to replace it).");
        string full = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            WriteFaults.At("folder", full);
            string? aside = null;
            if (Directory.Exists(full))
            {
                aside = full + ".old-" + Guid.NewGuid().ToString("N")[..8];
                Directory.Move(full, aside);
            }
            Directory.Move(tmp, full);
            if (aside is not null) Directory.Delete(aside, recursive: true);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }
}
