using System.Globalization;

namespace QuantSharp.IO;

/// <summary>
/// The free-disk check every writer makes before it starts: a run that would fill the disk fails at once, naming the
/// folder and the bytes it needs, instead of hours later with a half-written output (which the atomic writers would
/// remove, but the time would be lost).
/// </summary>
public static class DiskSpace
{
    /// <summary>Headroom on top of the estimate: file systems round up, and metadata and JSON are not counted.</summary>
    public const double Margin = 1.05;

    public const long MinimumSlackBytes = 16L << 20;

    /// <summary>Throws when the file system holding <paramref name="target"/> (a file or folder, existing or not) has
    /// less free space than <paramref name="estimatedBytes"/> plus the margin.</summary>
    public static void Require(string target, long estimatedBytes, string flag)
    {
        if (estimatedBytes <= 0) return;
        long? free = FreeBytes(target);
        if (free is { } f) Check(target, estimatedBytes, f, flag);
    }

    /// <summary>The decision on its own (tests give it any free space).</summary>
    public static void Check(string target, long estimatedBytes, long freeBytes, string flag)
    {
        long needed = estimatedBytes >= long.MaxValue / 2 ? estimatedBytes : (long)(estimatedBytes * Margin) + MinimumSlackBytes;
        if (freeBytes >= needed) return;
        throw new QuantSharpException(string.Create(CultureInfo.InvariantCulture,
            $"{flag} {target}: writing it needs about {Describe(needed)} ({needed} bytes) but only {Describe(freeBytes)} " +
            $"({freeBytes} bytes) are free on that file system; free space or write somewhere else."));
    }

    /// <summary>Free bytes for the nearest existing folder at or above <paramref name="target"/>; null when unknown.</summary>
    public static long? FreeBytes(string target)
    {
        string? dir = Path.GetFullPath(target);
        while (dir is not null && !Directory.Exists(dir)) dir = Path.GetDirectoryName(dir);
        if (dir is null) return null;
        try { return new DriveInfo(dir).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return null; }
    }

    public static string Describe(long bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F2} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MiB");
}
