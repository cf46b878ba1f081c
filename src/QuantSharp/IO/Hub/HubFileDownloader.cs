using System.Security.Cryptography;

namespace QuantSharp.IO.Hub;

/// <summary>What the resolve endpoint's HEAD says about one file at one commit.</summary>
internal sealed record HubFileMetadata(string Commit, string Etag, long? Size);

/// <summary>
/// Fetches one file into blobs/&lt;etag&gt;: bytes go to blobs/&lt;etag&gt;.incomplete (resumed with a Range request after
/// a cut connection or an interrupted run), the size and, for LFS files, the sha256 are checked, and only then is the
/// file renamed into place, so blobs/ never holds a partial or corrupt file.
/// </summary>
internal sealed class HubFileDownloader(HubHttp http, HubOptions options)
{
    private const int BufferBytes = 1 << 20;

    public async Task<HubFileMetadata> HeadAsync(HubModelId id, string commitOrRevision, string file)
    {
        string url = ResolveUrl(id.RepoId, commitOrRevision, file);
        return await http.WithRetriesAsync(url, async () =>
        {
            using var response = await http.SendAsync(HttpMethod.Head, url, 0, followAbsolute: false).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status >= 400) throw http.Failure(response, id, url, file);
            string? commit = Header(response, "X-Repo-Commit");
            string? etag = Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag ?? Header(response, "ETag");
            if (commit is null || etag is null)
                throw new QuantSharpException($"{url}: the answer lacks X-Repo-Commit or ETag; is HF_ENDPOINT a Hugging Face Hub?");
            long? size = long.TryParse(Header(response, "X-Linked-Size"), out long linked) ? linked : response.Content.Headers.ContentLength;
            return new HubFileMetadata(commit, NormalizeEtag(etag), size);
        }).ConfigureAwait(false);
    }

    /// <summary>Downloads <paramref name="file"/> into <paramref name="blobPath"/> unless it is already there.</summary>
    public async Task DownloadAsync(HubModelId id, string commit, string file, string blobPath, long? size, string? sha256, Action<long> onBytes)
    {
        string url = ResolveUrl(id.RepoId, commit, file);
        string partial = blobPath + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        await http.WithRetriesAsync(url, async () =>
        {
            await FetchIntoAsync(id, url, file, partial, size, onBytes).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
        Verify(id, url, file, partial, size, sha256);
        File.Move(partial, blobPath, overwrite: true);
    }

    /// <summary>One attempt: continue the partial file from where it ends; a lost connection is transient.</summary>
    private async Task FetchIntoAsync(HubModelId id, string url, string file, string partial, long? size, Action<long> onBytes)
    {
        FileStream output;
        try
        {
            // FileShare.None takes an exclusive lock, so two processes never append to the same partial file.
            output = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        }
        catch (IOException e)
        {
            throw new QuantSharpException($"model {id}: cannot write {partial} (another download of {file} in progress?): {e.Message}", e);
        }
        await using (output.ConfigureAwait(false))
        {
            long have = output.Length;
            if (size is { } expected && have > expected) { output.SetLength(0); have = 0; }
            if (size is { } full && have == full) return;
            output.Seek(have, SeekOrigin.Begin);

            using var response = await http.SendAsync(HttpMethod.Get, url, have, followAbsolute: true).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status == 416)
            {
                // The server cannot continue from here (the partial file is not a prefix of it): start over.
                output.SetLength(0);
                throw new HubTransientException($"HTTP 416 resuming {file} at byte {have}");
            }
            if (status >= 400) throw http.Failure(response, id, url, file);
            if (status == 200 && have > 0)
            {
                output.SetLength(0); // the server ignored the Range: its body starts at byte 0
                have = 0;
            }
            else if (status == 206 && response.Content.Headers.ContentRange?.From is { } from && from != have)
            {
                output.SetLength(0);
                throw new HubTransientException($"HTTP 206 for {file} starts at byte {from}, not {have}");
            }
            else if (status is not (200 or 206))
                throw new QuantSharpException($"model {id}: {url} answered HTTP {status} {response.ReasonPhrase}.");
            onBytes(have);

            var buffer = new byte[BufferBytes];
            try
            {
                using var stall = new CancellationTokenSource();
                await using var body = await response.Content.ReadAsStreamAsync().ConfigureAwait(false);
                while (true)
                {
                    stall.CancelAfter(options.ReadTimeout); // restarted before every read: a limit on stalls, not on the whole file
                    int n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                    if (n == 0) break;
                    await output.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                    have += n;
                    onBytes(have);
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
            {
                await output.FlushAsync().ConfigureAwait(false); // keep what arrived for the resumed attempt
                throw new HubTransientException(e is OperationCanceledException
                    ? $"no data for {options.ReadTimeout.TotalSeconds:0} s after {have} bytes of {file}"
                    : $"connection lost after {have} bytes of {file}: {e.Message}", e);
            }
            await output.FlushAsync().ConfigureAwait(false);
            if (size is { } total && have < total)
                throw new HubTransientException($"connection closed after {have} of {total} bytes of {file}");
        }
    }

    /// <summary>Size, then sha256 for LFS files; a mismatch deletes the partial file so the next run starts clean.</summary>
    private static void Verify(HubModelId id, string url, string file, string partial, long? size, string? sha256)
    {
        long length = new FileInfo(partial).Length;
        if (size is { } expected && length != expected)
        {
            AtomicFile.TryDelete(partial);
            throw new QuantSharpException($"model {id}: {file} downloaded from {url} is {length} bytes, expected {expected}; the partial download was deleted, run again.");
        }
        if (sha256 is null) return;
        string actual;
        using (var stream = new FileStream(partial, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes))
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
        {
            AtomicFile.TryDelete(partial);
            throw new QuantSharpException($"model {id}: {file} downloaded from {url} has sha256 {actual}, expected {sha256}; the download was deleted, run again.");
        }
    }

    public string ResolveUrl(string repoId, string revision, string file) =>
        http.Url($"{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    /// <summary>ETags arrive quoted and sometimes weak (W/"..."); the cache names blobs by the bare value.</summary>
    internal static string NormalizeEtag(string etag)
    {
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal)) e = e[2..];
        return e.Trim('"');
    }
}
