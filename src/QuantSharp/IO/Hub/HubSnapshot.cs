namespace QuantSharp.IO.Hub;

/// <summary>
/// Turns what a user passes as --model into a local folder: an existing folder as it is, otherwise a Hub id
/// "org/name[@revision]" resolved through the shared Hugging Face cache (downloading only when needed and allowed).
/// </summary>
public static class HubSnapshot
{
    public static string Resolve(string modelIdOrPath, HubOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelIdOrPath);
        if (Directory.Exists(modelIdOrPath)) return modelIdOrPath;
        if (!HubModelId.TryParse(modelIdOrPath, out var id))
            throw new QuantSharpException($"--model {modelIdOrPath}: folder not found (and not a Hugging Face id org/name[@revision]).");
        return Resolve(id, options ?? HubOptions.FromEnvironment());
    }

    public static string Resolve(HubModelId id, HubOptions options)
    {
        var cache = new HubCacheLayout(options.CacheDir, id.RepoId);
        string? cached = CompleteCachedSnapshot(cache, id);
        if (options.Offline)
            return cached ?? throw new QuantSharpException(
                $"model {id} is not in the Hugging Face cache ({cache.RepoDir}) and HF_HUB_OFFLINE=1 forbids downloading it: "
                + "run once without HF_HUB_OFFLINE, or point --model at a folder.");
        // A commit never changes, so its complete snapshot needs no network at all.
        if (cached is not null && id.IsCommit) return cached;
        using var client = new HubClient(options);
        try
        {
            return client.Download(id);
        }
        catch (HubNetworkException) when (cached is not null)
        {
            // As huggingface_hub does: with the Hub unreachable, the snapshot cached for this revision is used.
            return cached;
        }
    }

    private static string? CompleteCachedSnapshot(HubCacheLayout cache, HubModelId id)
    {
        string? commit = cache.CachedCommit(id.Revision);
        if (commit is null) return null;
        string dir = cache.SnapshotDir(commit);
        return HubCacheLayout.LooksComplete(dir) ? dir : null;
    }
}
