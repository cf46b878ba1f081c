namespace QuantSharp.IO.Hub;

/// <summary>
/// Which files of a repository a model needs: its configs, tokenizer and safetensors weights, never the duplicate
/// pickled/GGUF weights many repositories also carry (unless asked for by pattern).
/// </summary>
internal static class HubFileSelection
{
    public static readonly string[] SmallFiles =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    ];

    /// <summary>
    /// The files to fetch before the weights can be chosen: the configs and, for a sharded model, its index.
    /// model.safetensors wins over an index (as <see cref="SafetensorsCheckpoint.Open"/> prefers it), so a repository
    /// with both is not fetched twice.
    /// </summary>
    public static List<string> FirstStage(IReadOnlyList<HubSibling> siblings, HubModelId id, IReadOnlyList<string> extraPatterns)
    {
        var names = siblings.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var files = SmallFiles.Where(names.Contains).ToList();
        if (!names.Contains("config.json"))
            throw new QuantSharpException($"model {id}: the repository has no config.json, so it is not a transformers model QuantSharp can load.");
        if (names.Contains(SafetensorsCheckpoint.SingleFileName)) files.Add(SafetensorsCheckpoint.SingleFileName);
        else if (names.Contains(ShardIndex.FileName)) files.Add(ShardIndex.FileName);
        else
            throw new QuantSharpException($"model {id}: the repository has no {SafetensorsCheckpoint.SingleFileName} or {ShardIndex.FileName}; "
                + "QuantSharp reads safetensors weights only (not .bin/.pt/.gguf).");
        foreach (string n in siblings.Select(s => s.Name))
            if (!files.Contains(n) && extraPatterns.Any(p => Matches(p, n))) files.Add(n);
        return files;
    }

    /// <summary>The shards a downloaded index names, each checked to be in the repository.</summary>
    public static List<string> Shards(string indexPath, IReadOnlyList<HubSibling> siblings, HubModelId id)
    {
        var names = siblings.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var shards = ShardIndex.Load(indexPath).WeightMap.Select(e => e.Value).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        foreach (string shard in shards)
            if (!names.Contains(shard))
                throw new QuantSharpException($"model {id}: {ShardIndex.FileName} names shard '{shard}', which the repository does not have.");
        return shards;
    }

    /// <summary>A glob where '*' matches any run of characters and '?' one character.</summary>
    internal static bool Matches(string pattern, string name)
    {
        int p = 0, n = 0, star = -1, mark = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == name[n])) { p++; n++; }
            else if (p < pattern.Length && pattern[p] == '*') { star = p++; mark = n; }
            else if (star >= 0) { p = star + 1; n = ++mark; }
            else return false;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}
