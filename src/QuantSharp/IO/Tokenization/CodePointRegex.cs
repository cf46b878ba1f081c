using System.Globalization;
using System.Text.RegularExpressions;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// A .NET regex that matches per Unicode code point, as Oniguruma does in Hugging Face tokenizers.
/// <para>
/// .NET regexes see UTF-16 code units, so an astral character (emoji, CJK extension B, mathematical letters) is two
/// surrogates of category Cs: <c>\p{L}</c> misses 𝐀, and <c>[^\s\p{L}\p{N}]</c> may stop between the halves of
/// an emoji. Rather than rewrite every class, text that contains surrogate pairs is first "compacted": each pair is
/// replaced by one BMP stand-in character of the same general category (and, like every astral character, not
/// whitespace). Category classes, \s, \S and '.' then behave exactly as on the code point, and match offsets are
/// mapped back to the original string, so a pair is never split. Patterns with astral literals are rejected by
/// <see cref="OnigurumaPattern"/>, since a stand-in cannot match them.
/// </para>
/// </summary>
internal sealed class CodePointRegex
{
    private static readonly char[] StandIns = BuildStandIns();

    private readonly Regex _regex;

    /// <summary>The pattern as given (Oniguruma syntax), for messages.</summary>
    public string Pattern { get; }

    private CodePointRegex(string pattern, Regex regex)
    {
        Pattern = pattern;
        _regex = regex;
    }

    /// <summary>Compiles an Oniguruma pattern; throws <see cref="FormatException"/> or <see cref="ArgumentException"/>.</summary>
    public static CodePointRegex FromOniguruma(string pattern) =>
        new(pattern, new Regex(OnigurumaPattern.ToDotNet(pattern), RegexOptions.Compiled | RegexOptions.CultureInvariant));

    /// <summary>Matches a literal string (the "String" form of a Split pattern).</summary>
    public static CodePointRegex FromLiteral(string literal) =>
        new(literal, new Regex(Regex.Escape(literal), RegexOptions.Compiled | RegexOptions.CultureInvariant));

    /// <summary>
    /// Appends the [start, end) ranges of all successive non-overlapping matches in <paramref name="text"/>, in UTF-16
    /// offsets of <paramref name="text"/>. Empty matches are included, as Oniguruma's find_iter yields them.
    /// </summary>
    public void Matches(ReadOnlySpan<char> text, List<(int Start, int End)> matches)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (ValueMatch m in _regex.EnumerateMatches(text)) matches.Add((m.Index, m.Index + m.Length));
            return;
        }

        // Compact surrogate pairs to stand-ins; map[k] is the original offset of compacted character k.
        var compact = new char[text.Length];
        var map = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            map[n] = i;
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32(c, text[i + 1]);
                compact[n++] = StandIns[(int)CharUnicodeInfo.GetUnicodeCategory(cp)];
                i++;
            }
            else compact[n++] = c; // BMP characters, and unpaired surrogates as themselves
        }
        map[n] = text.Length;
        foreach (ValueMatch m in _regex.EnumerateMatches(compact.AsSpan(0, n)))
            matches.Add((map[m.Index], map[m.Index + m.Length]));
    }

    // For each general category, a BMP character outside ASCII and Latin-1 controls that has it and is not
    // whitespace (no astral character is whitespace), so it cannot collide with the literals of usual patterns.
    private static char[] BuildStandIns()
    {
        int count = Enum.GetValues<UnicodeCategory>().Length;
        var standIns = new char[count];
        var found = new bool[count];
        for (int c = 0xA0; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            char ch = (char)c;
            int cat = (int)CharUnicodeInfo.GetUnicodeCategory(ch);
            if (found[cat] || char.IsWhiteSpace(ch)) continue;
            standIns[cat] = ch;
            found[cat] = true;
        }
        // Categories with no such BMP character (Cs, and the separators, which astral characters never have):
        // an unassigned code point is a harmless choice.
        for (int cat = 0; cat < count; cat++)
            if (!found[cat]) standIns[cat] = '\u0378';
        return standIns;
    }
}
