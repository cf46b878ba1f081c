using System.Globalization;
using System.Text;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// Translates the Oniguruma regex syntax that Hugging Face tokenizers uses into an equivalent .NET pattern.
/// The split patterns of GPT-2, Llama-3, Qwen2, DeepSeek and friends are mostly common syntax; the differences that
/// matter are handled here:
/// <list type="bullet">
/// <item>possessive quantifiers (<c>X++</c>, <c>X*+</c>, <c>X?+</c>) become atomic groups;</item>
/// <item><c>\pL</c> and <c>\p{^L}</c> forms, and long category names, become <c>\p{L}</c> / <c>\P{L}</c>;</item>
/// <item><c>\h</c> (Oniguruma: hex digit) and <c>\x{HHHH}</c>;</item>
/// <item>Oniguruma case-folds U+017F (long s) to 's' under <c>(?i)</c> and .NET does not, so a literal s there
/// becomes <c>[sSſ]</c> (this matters for the <c>(?i:'s|...)</c> contraction branch);</item>
/// <item>Oniguruma's <c>(?m)</c> is .NET's <c>(?s)</c> (dot matches newline).</item>
/// </list>
/// Unicode semantics per code point (astral characters) are not a syntax matter; <see cref="CodePointRegex"/>
/// handles those. Anything not understood is passed through, and .NET's parser reports what it rejects.
/// </summary>
internal static class OnigurumaPattern
{
    public static string ToDotNet(string pattern)
    {
        var sb = new StringBuilder(pattern.Length + 16);
        // Per open group: where it starts in the output and whether (?i) was in force outside it.
        var groups = new Stack<(int Start, bool OuterIgnoreCase)>();
        bool ignoreCase = false;
        int lastAtomStart = -1; // output index where the most recent quantifiable atom begins
        int i = 0;
        while (i < pattern.Length)
        {
            char c = pattern[i];
            switch (c)
            {
                case '\\':
                    lastAtomStart = sb.Length;
                    i = TranslateEscape(pattern, i, sb, inClass: false);
                    break;
                case '[':
                    lastAtomStart = sb.Length;
                    i = TranslateClass(pattern, i, sb);
                    break;
                case '(':
                    i = OpenGroup(pattern, i, sb, groups, ref ignoreCase, out bool isFlagSetter);
                    // A bare flag setter "(?i)" is not an atom; a quantifier cannot follow it.
                    if (isFlagSetter) lastAtomStart = -1;
                    break;
                case ')':
                    sb.Append(')');
                    if (groups.Count == 0) throw new FormatException("unbalanced ')'");
                    (int start, bool outer) = groups.Pop();
                    ignoreCase = outer;
                    lastAtomStart = start;
                    i++;
                    break;
                case '{' when !IsInterval(pattern, i):
                    // Both engines read a brace that does not start {n}, {n,}, {n,m} as a literal.
                    lastAtomStart = sb.Length;
                    sb.Append("\\{");
                    i++;
                    break;
                case '*' or '+' or '?' or '{':
                    i = TranslateQuantifier(pattern, i, sb, lastAtomStart);
                    lastAtomStart = -1;
                    break;
                default:
                    lastAtomStart = sb.Length;
                    if (ignoreCase && c is 's' or 'S') sb.Append("[sS\u017F]");
                    else if (char.IsHighSurrogate(c))
                        throw new FormatException("astral characters in the pattern are not supported");
                    else sb.Append(c);
                    i++;
                    break;
            }
        }
        if (groups.Count != 0) throw new FormatException("unbalanced '('");
        return sb.ToString();
    }

    private static int OpenGroup(string p, int i, StringBuilder sb, Stack<(int, bool)> groups, ref bool ignoreCase,
        out bool isFlagSetter)
    {
        isFlagSetter = false;
        int start = sb.Length;
        if (i + 1 < p.Length && p[i + 1] == '?' && i + 2 < p.Length && (char.IsAsciiLetter(p[i + 2]) || p[i + 2] == '-'))
        {
            // Inline options: (?imx-imx) or (?imx-imx:...)
            int j = i + 2;
            bool on = true, newIgnoreCase = ignoreCase;
            var flags = new StringBuilder();
            while (j < p.Length && (char.IsAsciiLetter(p[j]) || p[j] == '-'))
            {
                char f = p[j];
                if (f == '-') on = false;
                else if (f == 'i') newIgnoreCase = on;
                flags.Append(f == 'm' ? 's' : f); // Oniguruma/Ruby 'm' is dot-all
                j++;
            }
            if (j >= p.Length) throw new FormatException("unterminated group");
            if (p[j] == ')')
            {
                // (?i) applies to the rest of the enclosing group.
                sb.Append("(?").Append(flags).Append(')');
                ignoreCase = newIgnoreCase;
                isFlagSetter = true;
                return j + 1;
            }
            if (p[j] != ':') throw new FormatException($"unsupported group syntax at offset {i}");
            sb.Append("(?").Append(flags).Append(':');
            groups.Push((start, ignoreCase));
            ignoreCase = newIgnoreCase;
            return j + 1;
        }
        if (i + 2 < p.Length && p[i + 1] == '?' && p[i + 2] == '#')
        {
            // Comment: drop it.
            int end = p.IndexOf(')', i);
            if (end < 0) throw new FormatException("unterminated comment");
            isFlagSetter = true;
            return end + 1;
        }
        // Plain, non-capturing, named, atomic and look-around groups share the same syntax in both engines: copy the
        // opening up to where the group's body starts.
        int bodyStart = i + 1;
        if (bodyStart < p.Length && p[bodyStart] == '?')
        {
            bodyStart++;
            if (bodyStart >= p.Length) throw new FormatException("unterminated group");
            char kind = p[bodyStart];
            if (kind == '<' && bodyStart + 1 < p.Length && p[bodyStart + 1] is '=' or '!') bodyStart += 2; // look-behind
            else if (kind is '<' or '\'')
            {
                int close = p.IndexOf(kind == '<' ? '>' : '\'', bodyStart + 1); // named group
                if (close < 0) throw new FormatException("unterminated group name");
                bodyStart = close + 1;
            }
            else if (kind is ':' or '=' or '!' or '>') bodyStart++;
            else throw new FormatException($"unsupported group syntax '(?{kind}' at offset {i}");
        }
        sb.Append(p, i, bodyStart - i);
        groups.Push((start, ignoreCase));
        return bodyStart;
    }

    private static bool IsInterval(string p, int i)
    {
        int close = p.IndexOf('}', i);
        if (close <= i + 1) return false;
        var body = p.AsSpan(i + 1, close - i - 1);
        return char.IsAsciiDigit(body[0]) && !body.ContainsAnyExcept("0123456789,");
    }

    private static int TranslateQuantifier(string p, int i, StringBuilder sb, int atomStart)
    {
        int end = p[i] == '{' ? p.IndexOf('}', i) + 1 : i + 1;

        if (atomStart < 0) throw new FormatException($"quantifier without a target at offset {i}");
        sb.Append(p, i, end - i);
        if (end < p.Length && p[end] == '?')
        {
            sb.Append('?'); // lazy: same in both engines
            return end + 1;
        }
        if (end < p.Length && p[end] == '+')
        {
            if (p[i] == '{')
            {
                // In Oniguruma's Ruby syntax "{n,m}+" is not possessive but a repetition of the interval.
                sb.Insert(atomStart, "(?:").Append(")+");
            }
            else
            {
                sb.Insert(atomStart, "(?>").Append(')'); // possessive = atomic group around the greedy repeat
            }
            return end + 1;
        }
        return end;
    }

    private static int TranslateClass(string p, int i, StringBuilder sb)
    {
        sb.Append('[');
        i++;
        if (i < p.Length && p[i] == '^') { sb.Append('^'); i++; }
        if (i < p.Length && p[i] == ']') { sb.Append("\\]"); i++; } // a leading ']' is literal
        while (i < p.Length)
        {
            char c = p[i];
            if (c == ']') { sb.Append(']'); return i + 1; }
            if (c == '\\') { i = TranslateEscape(p, i, sb, inClass: true); continue; }
            if (c == '[') throw new FormatException("nested character classes and POSIX brackets are not supported");
            if (c == '&' && i + 1 < p.Length && p[i + 1] == '&')
                throw new FormatException("character class intersection (&&) is not supported");
            if (char.IsHighSurrogate(c)) throw new FormatException("astral characters in the pattern are not supported");
            sb.Append(c);
            i++;
        }
        throw new FormatException("unterminated character class");
    }

    private static int TranslateEscape(string p, int i, StringBuilder sb, bool inClass)
    {
        if (i + 1 >= p.Length) throw new FormatException("pattern ends with '\\'");
        char e = p[i + 1];
        switch (e)
        {
            case 'p' or 'P':
                return TranslateProperty(p, i, sb);
            case 'h':
                sb.Append(inClass ? "0-9a-fA-F" : "[0-9a-fA-F]");
                return i + 2;
            case 'H':
                if (inClass) throw new FormatException("\\H inside a character class is not supported");
                sb.Append("[^0-9a-fA-F]");
                return i + 2;
            case 'x' when i + 2 < p.Length && p[i + 2] == '{':
            {
                int close = p.IndexOf('}', i);
                if (close < 0) throw new FormatException("unterminated \\x{...}");
                int cp = int.Parse(p.AsSpan(i + 3, close - i - 3), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (cp > 0xFFFF) throw new FormatException("astral characters in the pattern are not supported");
                sb.Append("\\u").Append(cp.ToString("X4", CultureInfo.InvariantCulture));
                return close + 1;
            }
            default:
                sb.Append('\\').Append(e);
                return i + 2;
        }
    }

    private static int TranslateProperty(string p, int i, StringBuilder sb)
    {
        bool negated = p[i + 1] == 'P';
        string name;
        int next;
        if (i + 2 < p.Length && p[i + 2] == '{')
        {
            int close = p.IndexOf('}', i);
            if (close < 0) throw new FormatException("unterminated \\p{...}");
            name = p.Substring(i + 3, close - i - 3);
            next = close + 1;
        }
        else if (i + 2 < p.Length)
        {
            name = p[i + 2].ToString();
            next = i + 3;
        }
        else throw new FormatException("pattern ends inside \\p");
        if (name.StartsWith('^')) { negated = !negated; name = name[1..]; }
        sb.Append(negated ? "\\P{" : "\\p{").Append(CategoryName(name)).Append('}');
        return next;
    }

    // Oniguruma accepts long general-category names; .NET only the short ones (and block names, passed through).
    private static string CategoryName(string name) => name.Replace("_", "").Replace(" ", "").ToLowerInvariant() switch
    {
        "letter" => "L",
        "uppercaseletter" => "Lu",
        "lowercaseletter" => "Ll",
        "titlecaseletter" => "Lt",
        "modifierletter" => "Lm",
        "otherletter" => "Lo",
        "mark" or "combiningmark" => "M",
        "nonspacingmark" => "Mn",
        "spacingmark" => "Mc",
        "enclosingmark" => "Me",
        "number" => "N",
        "decimalnumber" or "digit" => "Nd",
        "letternumber" => "Nl",
        "othernumber" => "No",
        "punctuation" or "punct" => "P",
        "symbol" => "S",
        "separator" => "Z",
        "other" => "C",
        _ => name,
    };
}
