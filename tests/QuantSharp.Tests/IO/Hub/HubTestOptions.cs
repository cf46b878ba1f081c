using QuantSharp.IO.Hub;

namespace QuantSharp.Tests.IO.Hub;

/// <summary>Options pointing at a fake Hub with a temporary cache, and retries short enough for tests.</summary>
internal static class HubTestOptions
{
    public static HubOptions For(FakeHubServer? server, TempDir home, string? endpoint = null) => new()
    {
        Endpoint = endpoint ?? server!.Endpoint,
        CacheDir = Path.Combine(home.Path, "hub"),
        MaxAttempts = 3,
        RetryBaseDelay = TimeSpan.FromMilliseconds(10),
        RetryMaxDelay = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(5),
        ReadTimeout = TimeSpan.FromSeconds(5),
    };

    /// <summary>An endpoint nothing listens on: a port taken from the OS, then released.</summary>
    public static string UnreachableEndpoint()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }
}
