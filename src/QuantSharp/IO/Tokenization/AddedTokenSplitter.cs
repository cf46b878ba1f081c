using System.Buffers;
using System.Text;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// Finds added tokens in text the way tokenizers' AddedVocabulary::find_matches does: leftmost-longest,
/// non-overlapping matches of the tokens' contents, then the single_word / lstrip / rstrip rules. Special tokens can
/// be left in the text as ordinary characters (tokenizers' encode_special_tokens); they still win the leftmost-longest
/// choice, exactly as there, so text that such a token covers cannot match another added token.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar; // longest first
    private readonly SearchValues<char> _firstChars;

    public bool IsEmpty => _byFirstChar.Count == 0;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
    }

    /// <summary>
    /// Cuts <paramref name="text"/> into segments: (text, -1) for ordinary text and (content, id) for each added token.
    /// Empty ordinary segments are left out.
    /// </summary>
    public void Split(string text, bool parseSpecial, List<(string Text, int Id)> output)
    {
        if (IsEmpty)
        {
            output.Add((text, -1));
            return;
        }
        int emitted = 0; // end of what has been emitted so far
        int search = 0;  // where the next search for a token starts
        while (search < text.Length)
        {
            int at = text.AsSpan(search).IndexOfAny(_firstChars);
            if (at < 0) break;
            at += search;
            AddedToken? token = LongestAt(text, at);
            if (token is null)
            {
                search = at + 1;
                continue;
            }
            int start = at, stop = at + token.Content.Length;
            search = stop;
            if (token.Special && !parseSpecial) continue;
            if (token.SingleWord && (EndsWithWordChar(text, start) || StartsWithWordChar(text, stop))) continue;
            // Whitespace is never astral, so stepping one UTF-16 unit at a time is stepping one character.
            if (token.LStrip)
                while (start > emitted && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip)
            {
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
                search = stop;
            }
            if (start > emitted) output.Add((text[emitted..start], -1));
            output.Add((text[start..stop], token.Id));
            emitted = stop;
        }
        if (emitted < text.Length) output.Add((emitted == 0 ? text : text[emitted..], -1));
    }

    private AddedToken? LongestAt(string text, int at)
    {
        foreach (var token in _byFirstChar[text[at]])
            if (text.AsSpan(at).StartsWith(token.Content, StringComparison.Ordinal)) return token;
        return null;
    }

    // tokenizers uses char::is_alphanumeric; letters and numbers of Unicode are the same idea.
    private static bool EndsWithWordChar(string text, int end) =>
        end > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, end), out Rune r, out _) == OperationStatus.Done && IsWordRune(r);

    private static bool StartsWithWordChar(string text, int start) =>
        start < text.Length && Rune.DecodeFromUtf16(text.AsSpan(start), out Rune r, out _) == OperationStatus.Done && IsWordRune(r);

    private static bool IsWordRune(Rune r) => Rune.IsLetter(r) || Rune.IsNumber(r);
}
