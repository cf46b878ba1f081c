using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace QuantSharp.Tests.IO.Hub;

/// <summary>A request as the fake Hub saw it.</summary>
public sealed record HubRequest(string Method, string Path, string? Range, string? Authorization);

/// <summary>
/// A minimal Hugging Face Hub on 127.0.0.1 (ephemeral port, one connection per request) serving one repository:
/// the model-info API, HEAD/GET resolve with the Hub's headers (X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size),
/// LFS files redirected to a CDN path, Range requests, and faults on demand (cut connection, corrupt bytes, gating).
/// </summary>
public sealed class FakeHubServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly Dictionary<string, (string Commit, Dictionary<string, byte[]> Files)> _revisions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _cutsLeft = new(StringComparer.Ordinal);

    public string RepoId { get; }
    public string Endpoint { get; }
    public ConcurrentQueue<HubRequest> Requests { get; } = new();

    /// <summary>When set, every repository request without "Bearer {token}" is answered 401 (a gated model).</summary>
    public string? RequiredToken { get; set; }

    /// <summary>How many of the next requests are answered 503 (an overloaded Hub), to exercise the retries.</summary>
    public int ServiceUnavailableCount;

    /// <summary>Files whose bytes are served with one byte flipped (the advertised sha256 stays the real one).</summary>
    public HashSet<string> CorruptFiles { get; } = new(StringComparer.Ordinal);

    public FakeHubServer(string repoId)
    {
        RepoId = repoId;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Endpoint = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Serves micro-qwen3's files (plus a pytorch_model.bin that must never be fetched) as "main".</summary>
    public static FakeHubServer WithMicroQwen3(string repoId = "test-org/micro-qwen3")
    {
        var server = new FakeHubServer(repoId);
        server.AddRevision("main", MicroQwen3Files());
        return server;
    }

    public static Dictionary<string, byte[]> MicroQwen3Files()
    {
        var files = Directory.GetFiles(Fixtures.MicroQwen3).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal);
        files["pytorch_model.bin"] = Encoding.ASCII.GetBytes("pickled weights the downloader must skip");
        return files;
    }

    /// <summary>Adds a branch/tag; its commit is derived from the content, and the commit hash resolves too.</summary>
    public string AddRevision(string name, Dictionary<string, byte[]> files)
    {
        string commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(name + string.Join(",", files.Keys.Order()) + files.Values.Sum(f => f.Length))));
        _revisions[name] = (commit, files);
        _revisions[commit] = (commit, files);
        return commit;
    }

    public string CommitOf(string revision) => _revisions[revision].Commit;

    /// <summary>The next GET of <paramref name="file"/>'s bytes sends the full Content-Length but closes after half.</summary>
    public void CutNextDownloadHalfway(string file) => _cutsLeft[file] = 1;

    public int CountRequests(Func<HubRequest, bool> match) => Requests.Count(match);

    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal);
    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The git blob id the Hub reports as a non-LFS file's ETag.</summary>
    public static string GitBlobId(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => HandleAsync(client));
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(20)); // bounded: a stuck client cannot keep the server busy
                var stream = client.GetStream();
                var head = await ReadHeadAsync(stream, timeout.Token);
                if (head is null) return;
                await RespondAsync(stream, head.Value.Method, head.Value.Target, head.Value.Headers, timeout.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // the client went away or the server is stopping
            }
        }
    }

    private static async Task<(string Method, string Target, Dictionary<string, string> Headers)?> ReadHeadAsync(NetworkStream stream, CancellationToken ct)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (bytes.Count < 65536)
        {
            if (await stream.ReadAsync(one, ct) == 0) return null;
            bytes.Add(one[0]);
            int n = bytes.Count;
            if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n') break;
        }
        string[] lines = Encoding.ASCII.GetString(bytes.ToArray()).Split("\r\n");
        string[] requestLine = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return (requestLine[0], requestLine[1], headers);
    }

    private async Task RespondAsync(NetworkStream stream, string method, string target, Dictionary<string, string> headers, CancellationToken ct)
    {
        string path = target.Split('?')[0];
        Requests.Enqueue(new HubRequest(method, path, headers.GetValueOrDefault("Range"), headers.GetValueOrDefault("Authorization")));
        if (Interlocked.Decrement(ref ServiceUnavailableCount) >= 0)
        {
            await WriteAsync(stream, 503, [], null, ct);
            return;
        }

        if (path.StartsWith("/cdn-lfs/", StringComparison.Ordinal))
        {
            string sha = path["/cdn-lfs/".Length..];
            var match = _revisions.Values.SelectMany(r => r.Files).FirstOrDefault(f => IsLfs(f.Key) && Sha256(f.Value) == sha);
            if (match.Value is null) { await WriteAsync(stream, 404, [], null, ct); return; }
            await ServeBytesAsync(stream, match.Key, match.Value, headers, ct);
            return;
        }

        string[] parts = path.TrimStart('/').Split('/').Select(Uri.UnescapeDataString).ToArray();
        bool api = parts.Length >= 6 && parts[0] == "api" && parts[1] == "models" && parts[4] == "revision";
        bool resolve = parts.Length >= 5 && parts[2] == "resolve";
        if (!api && !resolve) { await WriteAsync(stream, 404, [], null, ct); return; }
        string repo = api ? $"{parts[2]}/{parts[3]}" : $"{parts[0]}/{parts[1]}";
        string revision = api ? string.Join('/', parts[5..]) : parts[3];
        if (repo != RepoId) { await WriteAsync(stream, 404, [("X-Error-Code", "RepoNotFound")], null, ct); return; }
        if (RequiredToken is not null && headers.GetValueOrDefault("Authorization") != "Bearer " + RequiredToken)
        {
            await WriteAsync(stream, 401, [("X-Error-Code", "GatedRepo")], null, ct);
            return;
        }
        if (!_revisions.TryGetValue(revision, out var rev))
        {
            await WriteAsync(stream, 404, [("X-Error-Code", "RevisionNotFound")], null, ct);
            return;
        }

        if (api)
        {
            var siblings = rev.Files.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => new Dictionary<string, object>
            {
                ["rfilename"] = f.Key,
                ["size"] = f.Value.Length,
                ["blobId"] = GitBlobId(f.Value),
                ["lfs"] = IsLfs(f.Key) ? new { sha256 = Sha256(f.Value), size = f.Value.Length, pointerSize = 134 } : null!,
            }.Where(kv => kv.Value is not null).ToDictionary());
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(new { id = RepoId, sha = rev.Commit, siblings });
            await WriteAsync(stream, 200, [("Content-Type", "application/json")], json, ct);
            return;
        }

        string file = string.Join('/', parts[4..]);
        if (!rev.Files.TryGetValue(file, out byte[]? content))
        {
            await WriteAsync(stream, 404, [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", rev.Commit)], null, ct);
            return;
        }
        if (IsLfs(file))
        {
            // As the Hub does: LFS files redirect to a CDN; the redirect itself carries the metadata a HEAD reads.
            await WriteAsync(stream, 302, [
                ("X-Repo-Commit", rev.Commit), ("X-Linked-Etag", $"\"{Sha256(content)}\""), ("X-Linked-Size", content.Length.ToString()),
                ("ETag", "\"pointer-etag\""), ("Location", $"{Endpoint}/cdn-lfs/{Sha256(content)}")], null, ct);
            return;
        }
        var meta = new List<(string, string)> { ("X-Repo-Commit", rev.Commit), ("ETag", $"\"{GitBlobId(content)}\"") };
        if (method == "HEAD") { await WriteAsync(stream, 200, meta, null, ct, contentLength: content.Length); return; }
        await ServeBytesAsync(stream, file, content, headers, ct, meta);
    }

    private async Task ServeBytesAsync(NetworkStream stream, string file, byte[] content, Dictionary<string, string> headers, CancellationToken ct, List<(string, string)>? extra = null)
    {
        byte[] body = content;
        if (CorruptFiles.Contains(file))
        {
            body = (byte[])content.Clone();
            body[body.Length / 2] ^= 0xFF;
        }
        long from = 0;
        if (headers.TryGetValue("Range", out string? range) && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
            from = long.Parse(range["bytes=".Length..^1]);
        var h = new List<(string, string)>(extra ?? []);
        int status = 200;
        if (from > 0)
        {
            status = 206;
            h.Add(("Content-Range", $"bytes {from}-{body.Length - 1}/{body.Length}"));
        }
        var slice = body.AsMemory((int)from);
        if (_cutsLeft.TryGetValue(file, out int left) && left > 0)
        {
            _cutsLeft[file] = left - 1;
            await WriteHeadAsync(stream, status, h, slice.Length, ct);
            await stream.WriteAsync(slice[..(slice.Length / 2)], ct);
            await stream.FlushAsync(ct);
            return; // closing here leaves the client short of the promised Content-Length
        }
        await WriteHeadAsync(stream, status, h, slice.Length, ct);
        await stream.WriteAsync(slice, ct);
    }

    private static async Task WriteAsync(NetworkStream stream, int status, List<(string, string)> headers, byte[]? body, CancellationToken ct, long? contentLength = null)
    {
        await WriteHeadAsync(stream, status, headers, contentLength ?? body?.Length ?? 0, ct);
        if (body is not null) await stream.WriteAsync(body, ct);
    }

    private static async Task WriteHeadAsync(NetworkStream stream, int status, List<(string, string)> headers, long contentLength, CancellationToken ct)
    {
        var sb = new StringBuilder($"HTTP/1.1 {status} {ReasonFor(status)}\r\n");
        foreach (var (name, value) in headers) sb.Append($"{name}: {value}\r\n");
        sb.Append($"Content-Length: {contentLength}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()), ct);
    }

    private static string ReasonFor(int status) => status switch
    {
        200 => "OK", 503 => "Service Unavailable", 206 => "Partial Content", 302 => "Found", 401 => "Unauthorized", 404 => "Not Found", _ => "Status",
    };

    /// <summary>Stops listening; later requests get "connection refused", as from an unreachable Hub.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _acceptLoop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
