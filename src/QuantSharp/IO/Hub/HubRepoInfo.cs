using System.Text.Json;

namespace QuantSharp.IO.Hub;

/// <summary>One file of a repository as the model-info API lists it (with ?blobs=true: size, git blob id, LFS sha256).</summary>
internal sealed record HubSibling(string Name, long? Size, string? BlobId, string? LfsSha256);

/// <summary>The answer of GET /api/models/{repo}/revision/{revision}: the commit and the files at it.</summary>
internal sealed record HubRepoInfo(string Commit, IReadOnlyList<HubSibling> Siblings)
{
    public static HubRepoInfo Parse(string url, ReadOnlySpan<byte> json)
    {
        try
        {
            var doc = JsonDocument.Parse(json.ToArray());
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("sha", out var sha) || sha.ValueKind != JsonValueKind.String
                    || !HubModelId.IsCommitHash(sha.GetString()!))
                    throw new QuantSharpException($"{url}: the answer has no commit 'sha'; is HF_ENDPOINT a Hugging Face Hub?");
                var siblings = new List<HubSibling>();
                if (root.TryGetProperty("siblings", out var list) && list.ValueKind == JsonValueKind.Array)
                {
                    foreach (var s in list.EnumerateArray())
                    {
                        if (!s.TryGetProperty("rfilename", out var name) || name.ValueKind != JsonValueKind.String) continue;
                        long? size = s.TryGetProperty("size", out var sz) && sz.ValueKind == JsonValueKind.Number ? sz.GetInt64() : null;
                        string? blobId = s.TryGetProperty("blobId", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString() : null;
                        string? lfsSha = s.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object
                            && lfs.TryGetProperty("sha256", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString() : null;
                        if (lfsSha is not null && s.TryGetProperty("lfs", out lfs) && lfs.TryGetProperty("size", out var ls) && ls.ValueKind == JsonValueKind.Number)
                            size = ls.GetInt64();
                        siblings.Add(new HubSibling(name.GetString()!, size, blobId, lfsSha));
                    }
                }
                return new HubRepoInfo(sha.GetString()!, siblings);
            }
        }
        catch (JsonException e)
        {
            throw new QuantSharpException($"{url}: the answer is not JSON ({e.Message}); is HF_ENDPOINT a Hugging Face Hub?", e);
        }
    }
}
