namespace QuantSharp.IO;

/// <summary>
/// Failure injection for the atomic-output tests. Writers call <see cref="At"/> at a point in the middle of writing
/// an output (after a tensor's bytes, before a rename); a test installs a callback that throws there and then checks
/// that nothing is left at the target path. The callback lives in an <see cref="AsyncLocal{T}"/>, so tests running in
/// parallel never see each other's faults, and without one installed <see cref="At"/> does nothing.
/// </summary>
internal static class WriteFaults
{
    private static readonly AsyncLocal<Action<string, string>?> Current = new();

    /// <summary>A mid-write point: <paramref name="point"/> says what was just written, <paramref name="path"/> the output it belongs to.</summary>
    public static void At(string point, string path) => Current.Value?.Invoke(point, path);

    /// <summary>Installs <paramref name="fault"/> (point, path) for the current flow until the result is disposed.</summary>
    public static IDisposable Inject(Action<string, string> fault)
    {
        var previous = Current.Value;
        Current.Value = fault;
        return new Restore(previous);
    }

    private sealed class Restore(Action<string, string>? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }
}
