namespace QuantSharp.IO.Hub;

/// <summary>Bytes fetched so far: of the current file and of everything this resolve downloads.</summary>
public readonly record struct HubProgress(string RepoId, string File, long FileDone, long FileTotal, long TotalDone, long Total);

/// <summary>
/// Where and how to fetch from the Hugging Face Hub. <see cref="FromEnvironment()"/> reads the variables
/// huggingface_hub reads (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE), so both tools share one cache.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Sent as "Authorization: Bearer" to the endpoint's host only (never to a CDN it redirects to).</summary>
    public string? Token { get; init; }

    /// <summary>The hub cache folder holding models--org--name/ (huggingface_hub's HF_HUB_CACHE).</summary>
    public string CacheDir { get; init; } = DefaultCacheDir(Environment.GetEnvironmentVariable);

    /// <summary>Use the cache only; a model not cached is an error instead of a download.</summary>
    public bool Offline { get; init; }

    /// <summary>Extra file patterns to fetch besides what a model needs (e.g. "*.bin"); '*' matches within a name.</summary>
    public IReadOnlyList<string> ExtraFiles { get; init; } = [];

    public Action<HubProgress>? Progress { get; init; }

    /// <summary>Attempts per request on network errors, 429 and 5xx; each failed one waits twice as long as the last.</summary>
    public int MaxAttempts { get; init; } = 5;
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(16);

    /// <summary>Time allowed to connect and receive response headers.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest stall allowed between two chunks of a body, so a dead connection cannot hang a download.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    internal static HubOptions FromEnvironment(Func<string, string?> env)
    {
        string? endpoint = env("HF_ENDPOINT");
        return new HubOptions
        {
            Endpoint = string.IsNullOrWhiteSpace(endpoint) ? DefaultEndpoint : endpoint.Trim().TrimEnd('/'),
            Token = TokenFrom(env),
            CacheDir = DefaultCacheDir(env),
            Offline = IsTrue(env("HF_HUB_OFFLINE")),
        };
    }

    /// <summary>HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.</summary>
    internal static string DefaultCacheDir(Func<string, string?> env)
    {
        string? cache = env("HF_HUB_CACHE");
        if (!string.IsNullOrEmpty(cache)) return ExpandHome(cache);
        return Path.Combine(HfHome(env), "hub");
    }

    private static string HfHome(Func<string, string?> env)
    {
        string? home = env("HF_HOME");
        if (!string.IsNullOrEmpty(home)) return ExpandHome(home);
        string? xdg = env("XDG_CACHE_HOME");
        string cacheRoot = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
            : ExpandHome(xdg);
        return Path.Combine(cacheRoot, "huggingface");
    }

    /// <summary>HF_TOKEN, else the token `hf auth login` stored in $HF_HOME/token (or HF_TOKEN_PATH).</summary>
    private static string? TokenFrom(Func<string, string?> env)
    {
        string? token = env("HF_TOKEN");
        if (!string.IsNullOrWhiteSpace(token)) return token.Trim();
        string? tokenPathEnv = env("HF_TOKEN_PATH");
        string path = string.IsNullOrEmpty(tokenPathEnv) ? Path.Combine(HfHome(env), "token") : ExpandHome(tokenPathEnv);
        try
        {
            if (!File.Exists(path)) return null;
            string stored = File.ReadAllText(path).Trim();
            return stored.Length == 0 ? null : stored;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // an unreadable token file means "no token", as in huggingface_hub
        }
    }

    /// <summary>huggingface_hub's truthy spellings.</summary>
    private static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string ExpandHome(string path) =>
        path.StartsWith('~') ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..] : path;
}
