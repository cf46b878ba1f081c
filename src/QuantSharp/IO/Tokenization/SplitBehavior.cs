namespace QuantSharp.IO.Tokenization;

/// <summary>What a Split pre-tokenizer does with the text its pattern matches (tokenizers' SplitDelimiterBehavior).</summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

internal static class SplitBehaviors
{
    public static SplitBehavior Parse(string name) => name switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new FormatException($"unknown split behavior '{name}'"),
    };

    /// <summary>
    /// Cuts <paramref name="text"/> by the match ranges and appends the non-empty pieces to <paramref name="output"/>.
    /// Mirrors tokenizers' NormalizedString::split, including its folds for the merged behaviors (a match merges only
    /// into a non-match neighbour, so two adjacent matches stay apart) and its dropping of empty pieces.
    /// </summary>
    public static void Apply(string text, List<(int Start, int End)> matches, SplitBehavior behavior, bool invert,
        List<string> output)
    {
        // tokenizers' Pattern::find_matches: the whole text as (range, is_match) segments, gaps included.
        var segments = new List<(int Start, int End, bool IsMatch)>(matches.Count * 2 + 1);
        if (text.Length == 0) segments.Add((0, 0, false));
        int prev = 0;
        foreach ((int start, int end) in matches)
        {
            if (prev != start) segments.Add((prev, start, invert));
            segments.Add((start, end, !invert));
            prev = end;
        }
        if (prev != text.Length) segments.Add((prev, text.Length, invert));

        var pieces = new List<(int Start, int End)>(segments.Count);
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var s in segments) pieces.Add((s.Start, s.End));
                break;
            case SplitBehavior.Removed:
                foreach (var s in segments) if (!s.IsMatch) pieces.Add((s.Start, s.End));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var s in segments)
                {
                    if (s.IsMatch && !previousMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, s.End);
                    else pieces.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int k = segments.Count - 1; k >= 0; k--)
                {
                    var s = segments[k];
                    if (s.IsMatch && !previousMatch && pieces.Count > 0) pieces[^1] = (s.Start, pieces[^1].End);
                    else pieces.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                pieces.Reverse();
                break;
            case SplitBehavior.Contiguous:
                foreach (var s in segments)
                {
                    if (s.IsMatch == previousMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, s.End);
                    else pieces.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(behavior));
        }

        foreach ((int start, int end) in pieces)
            if (end > start) output.Add(start == 0 && end == text.Length ? text : text[start..end]);
    }
}
