using System.Text.RegularExpressions;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// lm-eval's regex answer filter and exact_match metric. A filter takes the generation, finds every match of its
/// pattern (a match with groups yields its first non-empty group) and keeps match number group_select (−1 = last), or
/// the fallback when there is none. exact_match strips regexes_to_ignore from both sides, then compares.
/// </summary>
public static class AnswerExtraction
{
    public static string Extract(string generation, AnswerFilterSpec filter)
    {
        if (filter.Regex is null) return generation;
        var matches = new Regex(filter.Regex).Matches(generation);
        if (matches.Count == 0) return filter.Fallback;
        int index = filter.GroupSelect < 0 ? matches.Count + filter.GroupSelect : filter.GroupSelect;
        if (index < 0 || index >= matches.Count) index = 0;
        var m = matches[index];
        if (m.Groups.Count == 1) return m.Value.Trim();
        for (int g = 1; g < m.Groups.Count; g++)
            if (m.Groups[g].Success && m.Groups[g].Value.Length > 0) return m.Groups[g].Value.Trim();
        return filter.Fallback;
    }

    public static bool ExactMatch(string prediction, string reference, ExactMatchSpec spec)
    {
        foreach (string pattern in spec.RegexesToIgnore)
        {
            prediction = Regex.Replace(prediction, pattern, "");
            reference = Regex.Replace(reference, pattern, "");
        }
        if (spec.IgnoreCase)
        {
            prediction = prediction.ToLowerInvariant();
            reference = reference.ToLowerInvariant();
        }
        if (spec.IgnorePunctuation)
        {
            prediction = new string(prediction.Where(c => !char.IsPunctuation(c)).ToArray());
            reference = new string(reference.Where(c => !char.IsPunctuation(c)).ToArray());
        }
        return prediction == reference;
    }

    /// <summary>The generation cut at the first occurrence of any stop string (lm-eval's until).</summary>
    public static string CutAtStop(string text, IEnumerable<string> stops)
    {
        foreach (string stop in stops)
        {
            if (stop.Length == 0) continue;
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0) text = text[..at];
        }
        return text;
    }
}
