using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// The BPE model of tokenizers: splits one pre-token into initial symbols (one per character) and applies merges
/// by rank. Merges are looked up by the pair of symbol ids; a word is merged with a priority queue over a linked list
/// of symbols (tokenizers' Word::merge_all), so a long word costs O(n log n), not O(n²). Results are cached per
/// pre-token string because natural text repeats its words.
/// </summary>
internal sealed class BpeModel
{
    // Words longer than this are not cached: they are rare and would pin memory (tokenizers uses the same bound).
    private const int MaxCachedWordLength = 256;
    private const int MaxCacheEntries = 1 << 18;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly Dictionary<long, Merge> _merges;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly string _prefix; // continuing_subword_prefix, "" when none
    private readonly string _suffix; // end_of_word_suffix, "" when none
    private readonly int[]? _byteFallbackIds; // id of "<0xXX>" per byte when byte_fallback and all 256 exist
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    /// <summary>Rank (priority: lower merges first) and the id of the merged token.</summary>
    internal readonly record struct Merge(int Rank, int NewId);

    public BpeModel(Dictionary<string, int> vocab, Dictionary<long, Merge> merges, int? unkId, bool fuseUnk,
        bool byteFallback, bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _merges = merges;
        _unkId = unkId;
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _prefix = continuingSubwordPrefix ?? "";
        _suffix = endOfWordSuffix ?? "";
        if (byteFallback)
        {
            var ids = new int[256];
            bool all = true;
            for (int b = 0; b < 256 && all; b++)
                all = vocab.TryGetValue(string.Create(CultureInfo.InvariantCulture, $"<0x{b:X2}>"), out ids[b]);
            _byteFallbackIds = all ? ids : null;
        }
    }

    public static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Appends the ids of <paramref name="word"/> (one pre-token) to <paramref name="output"/>.</summary>
    public void Encode(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_cache.TryGetValue(word, out int[]? cached))
        {
            output.AddRange(cached);
            return;
        }
        int[] ids = EncodeUncached(word);
        if (word.Length <= MaxCachedWordLength && _cache.Count < MaxCacheEntries) _cache.TryAdd(word, ids);
        output.AddRange(ids);
    }

    private int[] EncodeUncached(string word)
    {
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole)) return [whole];

        var symbols = InitialSymbols(word);
        int n = symbols.Count;
        if (n <= 1) return symbols.ToArray();

        // Doubly linked list over the initial symbols; removed symbols are marked dead.
        int[] id = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var dead = new bool[n];
        for (int k = 0; k < n; k++) { prev[k] = k - 1; next[k] = k + 1 < n ? k + 1 : -1; }

        // Ordered by rank, then by position: the leftmost of equally ranked pairs merges first, as in tokenizers.
        var queue = new PriorityQueue<(int Pos, int NewId), long>();
        for (int k = 0; k + 1 < n; k++)
            if (_merges.TryGetValue(PairKey(id[k], id[k + 1]), out Merge m)) queue.Enqueue((k, m.NewId), Priority(m.Rank, k));

        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (dead[pos] || next[pos] < 0) continue;
            int right = next[pos];
            // Stale entry: one of the two symbols has changed since it was queued.
            if (!_merges.TryGetValue(PairKey(id[pos], id[right]), out Merge current) || current.NewId != top.NewId) continue;

            id[pos] = top.NewId;
            dead[right] = true;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;

            if (prev[pos] >= 0 && _merges.TryGetValue(PairKey(id[prev[pos]], id[pos]), out Merge left))
                queue.Enqueue((prev[pos], left.NewId), Priority(left.Rank, prev[pos]));
            if (next[pos] >= 0 && _merges.TryGetValue(PairKey(id[pos], id[next[pos]]), out Merge after))
                queue.Enqueue((pos, after.NewId), Priority(after.Rank, pos));
        }

        var result = new List<int>(n);
        for (int k = 0; k >= 0; k = next[k]) result.Add(id[k]);
        return result.ToArray();
    }

    private static long Priority(int rank, int pos) => ((long)rank << 32) | (uint)pos;

    // One symbol per character (code point), with the subword prefix/suffix decorations; unknown characters become
    // byte-fallback tokens, the unk token (fused if asked), or are dropped, in that order of preference (tokenizers'
    // BPE::merge_word).
    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        bool decorated = _prefix.Length > 0 || _suffix.Length > 0;
        bool lastWasUnk = false;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            ReadOnlySpan<char> ch = word.AsSpan(i, len);
            bool found;
            int tokenId;
            if (!decorated) found = _vocabBySpan.TryGetValue(ch, out tokenId);
            else
            {
                string s = (i > 0 ? _prefix : "") + ch.ToString() + (i + len == word.Length ? _suffix : "");
                found = _vocab.TryGetValue(s, out tokenId);
            }
            i += len;

            if (found)
            {
                symbols.Add(tokenId);
                lastWasUnk = false;
            }
            else if (_byteFallbackIds is not null)
            {
                int count = Encoding.UTF8.GetBytes(ch, utf8);
                for (int b = 0; b < count; b++) symbols.Add(_byteFallbackIds[utf8[b]]);
                lastWasUnk = false;
            }
            else if (_unkId is int unk)
            {
                if (!(_fuseUnk && lastWasUnk)) symbols.Add(unk);
                lastWasUnk = true;
            }
        }
        return symbols;
    }
}
