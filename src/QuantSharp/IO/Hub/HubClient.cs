namespace QuantSharp.IO.Hub;

/// <summary>
/// Downloads what a model needs from the Hub into the shared cache and returns its snapshot folder. Files already in
/// the snapshot are not fetched again; blobs already in the cache (from any commit, or from Python) are only linked.
/// </summary>
public sealed class HubClient : IDisposable
{
    private readonly HubOptions _options;
    private readonly HubHttp _http;
    private readonly HubFileDownloader _downloader;

    public HubClient(HubOptions? options = null)
    {
        _options = options ?? HubOptions.FromEnvironment();
        _http = new HubHttp(_options);
        _downloader = new HubFileDownloader(_http, _options);
    }

    /// <summary>The snapshot folder of <paramref name="id"/>, downloading what is missing.</summary>
    public string Download(HubModelId id) => DownloadAsync(id).GetAwaiter().GetResult();

    public async Task<string> DownloadAsync(HubModelId id)
    {
        var cache = new HubCacheLayout(_options.CacheDir, id.RepoId);
        HubRepoInfo info = await RepoInfoAsync(id).ConfigureAwait(false);
        string commit = info.Commit;
        if (id.Revision != commit) cache.WriteRef(id.Revision, commit);

        var siblings = info.Siblings.ToDictionary(s => s.Name, StringComparer.Ordinal);
        List<string> files = HubFileSelection.FirstStage(info.Siblings, id, _options.ExtraFiles);
        // The index is needed to know the shards, so it comes first; everything else is counted for progress.
        if (files.Contains(ShardIndex.FileName))
        {
            await FetchAsync(id, cache, commit, ShardIndex.FileName, siblings, new ProgressTally(id.RepoId, 0, null)).ConfigureAwait(false);
            files.Remove(ShardIndex.FileName);
            files.AddRange(HubFileSelection.Shards(cache.SnapshotFile(commit, ShardIndex.FileName), info.Siblings, id));
        }

        var missing = files.Where(f => !File.Exists(cache.SnapshotFile(commit, f))).ToList();
        long total = missing.Sum(f => siblings[f].Size ?? 0);
        var tally = new ProgressTally(id.RepoId, total, _options.Progress);
        foreach (string file in missing)
            await FetchAsync(id, cache, commit, file, siblings, tally).ConfigureAwait(false);
        return cache.SnapshotDir(commit);
    }

    private async Task<HubRepoInfo> RepoInfoAsync(HubModelId id)
    {
        string url = _http.Url($"api/models/{id.RepoId}/revision/{Uri.EscapeDataString(id.Revision)}?blobs=true");
        return await _http.WithRetriesAsync(url, async () =>
        {
            using var response = await _http.SendAsync(HttpMethod.Get, url, 0, followAbsolute: true).ConfigureAwait(false);
            if ((int)response.StatusCode >= 400) throw _http.Failure(response, id, url);
            byte[] body;
            try
            {
                body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new HubTransientException($"connection lost reading the model info: {e.Message}", e);
            }
            return HubRepoInfo.Parse(url, body);
        }).ConfigureAwait(false);
    }

    /// <summary>One file into blobs/ (unless there) and linked from snapshots/&lt;commit&gt;/.</summary>
    private async Task FetchAsync(HubModelId id, HubCacheLayout cache, string commit, string file, Dictionary<string, HubSibling> siblings, ProgressTally tally)
    {
        // File names come from the server: one that would land outside the snapshot folder is refused.
        if (file.StartsWith('/') || file.Contains('\\') || file.Split('/').Any(s => s is "" or "." or ".."))
            throw new QuantSharpException($"model {id}: the repository lists a file named '{file}', which is not a safe relative path.");
        if (File.Exists(cache.SnapshotFile(commit, file))) return;
        HubFileMetadata meta = await _downloader.HeadAsync(id, commit, file).ConfigureAwait(false);
        if (!IsSafeBlobName(meta.Etag))
            throw new QuantSharpException($"model {id}: the Hub's ETag for {file} ('{meta.Etag}') is not a plain name to store the file under.");
        HubSibling sibling = siblings[file];
        long? size = meta.Size ?? sibling.Size;
        // LFS files are named by their sha256 (the ETag); the listing's lfs.sha256 says the same and is what is checked.
        string? sha256 = sibling.LfsSha256 ?? (meta.Etag.Length == 64 && meta.Etag.All(char.IsAsciiHexDigit) ? meta.Etag : null);
        string blob = cache.BlobPath(meta.Etag);
        if (!(File.Exists(blob) && (size is null || new FileInfo(blob).Length == size)))
        {
            long before = tally.Done;
            await _downloader.DownloadAsync(id, commit, file, blob, size, sha256, have => tally.Report(file, have, size ?? 0, before + have)).ConfigureAwait(false);
        }
        cache.LinkIntoSnapshot(commit, file, meta.Etag);
        tally.FileDone(file, size ?? new FileInfo(blob).Length);
    }

    private static bool IsSafeBlobName(string etag) =>
        etag.Length is > 0 and <= 128 && etag.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>Running byte count over all the files of one resolve.</summary>
    private sealed class ProgressTally(string repoId, long total, Action<HubProgress>? callback)
    {
        public long Done { get; private set; }

        public void Report(string file, long fileDone, long fileTotal, long done) =>
            callback?.Invoke(new HubProgress(repoId, file, fileDone, fileTotal, done, Math.Max(total, done)));

        public void FileDone(string file, long fileBytes)
        {
            Done += fileBytes;
            callback?.Invoke(new HubProgress(repoId, file, fileBytes, fileBytes, Done, Math.Max(total, Done)));
        }
    }

    public void Dispose() => _http.Dispose();
}
