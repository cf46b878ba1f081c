namespace QuantSharp.IO.Hub;

/// <summary>The Hub could not be reached (after retries); names the URL and the offline way out.</summary>
public sealed class HubNetworkException : QuantSharpException
{
    public string Url { get; }

    public HubNetworkException(string url, string problem, string cacheDir, Exception? inner = null)
        : base($"cannot download {url}: {problem}. Check the network and HF_ENDPOINT; HF_HUB_OFFLINE=1 uses only the local cache ({cacheDir}).",
            inner ?? new IOException(problem))
    {
        Url = url;
    }
}

/// <summary>A failure worth another attempt (connection lost, timeout, 429, 5xx); never escapes <see cref="HubHttp"/>'s callers.</summary>
internal sealed class HubTransientException(string problem, Exception? inner = null) : Exception(problem, inner);
