namespace QuantSharp;

/// <summary>
/// An error caused by the user's input (a file, a flag, a model) rather than by a bug. The CLI prints its message
/// without a stack trace and exits non-zero. Messages name the file, tensor or flag at fault.
/// </summary>
public class QuantSharpException : Exception
{
    public QuantSharpException(string message) : base(message) { }
    public QuantSharpException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A file that cannot be read as what it claims to be (corrupt, truncated, inconsistent).</summary>
public sealed class InvalidFileException : QuantSharpException
{
    public string FilePath { get; }
    public string? TensorName { get; }

    public InvalidFileException(string filePath, string problem, string? tensorName = null, Exception? inner = null)
        : base(Compose(filePath, problem, tensorName), inner ?? new InvalidDataException(problem))
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    private static string Compose(string file, string problem, string? tensor) =>
        tensor is null ? $"{file}: {problem}" : $"{file}: tensor '{tensor}': {problem}";
}
