namespace QuantSharp.IO.Hub;

/// <summary>
/// huggingface_hub's cache layout for one model, so downloads are shared with Python:
/// models--org--name/blobs/&lt;etag&gt; (file contents, named by the Hub's ETag: the sha256 for LFS files, the git blob
/// id otherwise), snapshots/&lt;commit&gt;/&lt;file&gt; (relative symlinks to the blobs) and refs/&lt;revision&gt; (the commit
/// a branch or tag pointed to when last fetched, no trailing newline).
/// </summary>
internal sealed class HubCacheLayout
{
    public string RepoId { get; }
    public string RepoDir { get; }
    public string BlobsDir => Path.Combine(RepoDir, "blobs");
    public string SnapshotsDir => Path.Combine(RepoDir, "snapshots");
    public string RefsDir => Path.Combine(RepoDir, "refs");

    public HubCacheLayout(string cacheDir, string repoId)
    {
        RepoId = repoId;
        RepoDir = Path.Combine(Path.GetFullPath(cacheDir), "models--" + repoId.Replace("/", "--"));
    }

    public string BlobPath(string etag) => Path.Combine(BlobsDir, etag);
    public string SnapshotDir(string commit) => Path.Combine(SnapshotsDir, commit);
    public string SnapshotFile(string commit, string file) => Path.Combine(SnapshotDir(commit), file);

    // A revision like "refs/pr/1" is stored as nested folders under refs/, as huggingface_hub does.
    public string RefPath(string revision) => Path.Combine(RefsDir, revision);

    /// <summary>The commit a revision resolves to in the cache: itself for a cached commit, else refs/&lt;revision&gt;.</summary>
    public string? CachedCommit(string revision)
    {
        if (HubModelId.IsCommitHash(revision) && Directory.Exists(SnapshotDir(revision))) return revision;
        string refPath = RefPath(revision);
        if (!File.Exists(refPath)) return null;
        string commit = File.ReadAllText(refPath).Trim();
        return HubModelId.IsCommitHash(commit) ? commit : null;
    }

    public void WriteRef(string revision, string commit)
    {
        string refPath = RefPath(revision);
        if (File.Exists(refPath) && File.ReadAllText(refPath).Trim() == commit) return;
        Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        AtomicFile.WriteAllBytes(refPath, System.Text.Encoding.UTF8.GetBytes(commit));
    }

    /// <summary>Points snapshots/&lt;commit&gt;/&lt;file&gt; at blobs/&lt;etag&gt; with a relative link, replacing a stale one.</summary>
    public void LinkIntoSnapshot(string commit, string file, string etag)
    {
        string link = SnapshotFile(commit, file);
        string linkDir = Path.GetDirectoryName(link)!;
        Directory.CreateDirectory(linkDir);
        string target = Path.GetRelativePath(linkDir, BlobPath(etag));
        // Build the link beside its final name and rename it over, so a reader never sees a missing or half-made entry.
        string tmp = link + ".tmp-" + Environment.ProcessId;
        AtomicFile.TryDelete(tmp);
        File.CreateSymbolicLink(tmp, target);
        File.Move(tmp, link, overwrite: true);
    }

    /// <summary>
    /// Whether a cached snapshot has what loading needs: config.json and the weights (model.safetensors, or the index
    /// and every shard it names). Used when the Hub is not asked (offline, or unreachable).
    /// </summary>
    public static bool LooksComplete(string snapshotDir)
    {
        if (!File.Exists(Path.Combine(snapshotDir, "config.json"))) return false;
        if (File.Exists(Path.Combine(snapshotDir, SafetensorsCheckpoint.SingleFileName))) return true;
        string index = Path.Combine(snapshotDir, ShardIndex.FileName);
        if (!File.Exists(index)) return false;
        try
        {
            return ShardIndex.Load(index).WeightMap.All(e => File.Exists(Path.Combine(snapshotDir, e.Value)));
        }
        catch (InvalidFileException)
        {
            return false;
        }
    }
}
