namespace QuantSharp.Tests.Support;

/// <summary>Locates the repository's testdata/ and the optional ../shared fixtures.</summary>
public static class Fixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>testdata/ inside the repository: always present (micro-qwen3 and the data files).</summary>
    public static string TestData => Path.Combine(RepoRoot, "testdata");

    public static string MicroQwen3 => Path.Combine(TestData, "models", "micro-qwen3");
    public static string EvalText => Path.Combine(TestData, "data", "eval_a.txt");
    public static string CalibText => Path.Combine(TestData, "data", "calib.txt");
    public static string EvalTokens => Path.Combine(TestData, "data", "eval_a.tokens.safetensors");

    /// <summary>../shared beside the repository (or QUANTSHARP_SHARED), or null when absent.</summary>
    public static string? Shared
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("QUANTSHARP_SHARED");
            string dir = string.IsNullOrEmpty(env) ? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared")) : env;
            return Directory.Exists(dir) ? dir : null;
        }
    }

    /// <summary>A model folder by name: testdata/ first, then ../shared/models; null when absent.</summary>
    public static string? Model(string name)
    {
        string local = Path.Combine(TestData, "models", name);
        if (Directory.Exists(local)) return local;
        string? shared = Shared;
        if (shared is null) return null;
        string dir = Path.Combine(shared, "models", name);
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>A fresh temporary folder, deleted by the caller's using.</summary>
    public static TempDir NewTempDir() => new();

    private static string FindRepoRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null)
        {
            if (File.Exists(Path.Combine(dir, "QuantSharp.slnx"))) return dir;
            dir = Path.GetDirectoryName(dir);
        }
        throw new InvalidOperationException("QuantSharp.slnx not found above " + AppContext.BaseDirectory);
    }
}

public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "quantsharp-test-" + Guid.NewGuid().ToString("N"));

    public TempDir() => Directory.CreateDirectory(Path);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// A fact that needs a model kept only in ../shared (tiny-llama, tiny-qwen3). When the model is absent the test is
/// reported as skipped with the reason, never silently passed.
/// </summary>
public sealed class ModelFactAttribute : FactAttribute
{
    public ModelFactAttribute(string model)
    {
        if (Fixtures.Model(model) is null)
            Skip = $"fixture model '{model}' not found in testdata/ or ../shared/models (set QUANTSHARP_SHARED)";
    }
}

/// <summary>A theory over models, skipped with a reason when any named model is absent.</summary>
public sealed class ModelTheoryAttribute : TheoryAttribute
{
    public ModelTheoryAttribute(params string[] models)
    {
        var missing = models.Where(m => Fixtures.Model(m) is null).ToArray();
        if (missing.Length > 0)
            Skip = $"fixture model(s) {string.Join(", ", missing)} not found in testdata/ or ../shared/models (set QUANTSHARP_SHARED)";
    }
}
