using System.Text;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// Splits a Jinja template into text, {{ output }} and {% statement %} pieces (comments dropped), applying whitespace
/// control: a '-' inside a delimiter strips the whitespace on that side; otherwise transformers' settings apply,
/// trim_blocks (the first newline after a block tag is removed) and lstrip_blocks (spaces and tabs between the start
/// of a line and a block tag are removed).
/// </summary>
internal static class JinjaLexer
{
    public enum Kind { Text, Output, Statement }

    public readonly record struct Token(Kind Kind, string Text);

    public static List<Token> Split(string source)
    {
        var tokens = new List<Token>();
        var text = new StringBuilder();
        bool stripNextAll = false, trimNextNewline = false;
        int i = 0;
        while (i < source.Length)
        {
            int open = NextOpen(source, i);
            string chunk = source[i..(open < 0 ? source.Length : open)];
            // Whether the chunk begins a line (lstrip_blocks only strips indentation, not spaces after other text).
            bool atLineStart = i == 0 || source[i - 1] == '\n';
            if (stripNextAll) chunk = chunk.TrimStart();
            else if (trimNextNewline && chunk.StartsWith('\n')) { chunk = chunk[1..]; atLineStart = true; }
            else if (trimNextNewline && chunk.StartsWith("\r\n", StringComparison.Ordinal)) { chunk = chunk[2..]; atLineStart = true; }
            stripNextAll = trimNextNewline = false;
            if (open < 0) { Flush(tokens, chunk); break; }

            char type = source[open + 1];
            bool dashLeft = open + 2 < source.Length && source[open + 2] == '-';
            string close = type switch { '{' => "}}", '%' => "%}", _ => "#}" };
            int end = FindClose(source, open + 2, close, type == '#');
            if (end < 0) throw new QuantSharpException($"chat template: unclosed '{source.Substring(open, 2)}' at offset {open}.");
            bool dashRight = end > open + 2 && source[end - 1] == '-';
            if (dashLeft) chunk = chunk.TrimEnd();
            else if (type != '{') chunk = LstripBlock(chunk, atLineStart);
            Flush(tokens, chunk);

            int innerStart = open + 2 + (dashLeft ? 1 : 0), innerEnd = end - (dashRight ? 1 : 0);
            string inner = innerEnd > innerStart ? source[innerStart..innerEnd].Trim() : "";
            if (type == '{') tokens.Add(new Token(Kind.Output, inner));
            else if (type == '%')
            {
                if (inner.StartsWith("raw", StringComparison.Ordinal) || inner.StartsWith("macro", StringComparison.Ordinal)
                    || inner.StartsWith("call", StringComparison.Ordinal) || inner.StartsWith("filter", StringComparison.Ordinal)
                    || inner.StartsWith("generation", StringComparison.Ordinal))
                    throw JinjaTemplate.Unsupported($"{{% {inner.Split(' ')[0]} %}}");
                tokens.Add(new Token(Kind.Statement, inner));
            }
            stripNextAll = dashRight;
            trimNextNewline = !dashRight && type != '{';
            i = end + 2;
        }
        return tokens;
    }

    private static void Flush(List<Token> tokens, string text)
    {
        if (text.Length > 0) tokens.Add(new Token(Kind.Text, text));
    }

    private static int NextOpen(string s, int from)
    {
        for (int i = from; i + 1 < s.Length; i++)
            if (s[i] == '{' && s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>The closing delimiter, skipping string literals inside expressions.</summary>
    private static int FindClose(string s, int from, string close, bool comment)
    {
        char quote = '\0';
        for (int i = from; i + 1 < s.Length; i++)
        {
            char c = s[i];
            if (!comment)
            {
                if (quote != '\0') { if (c == '\\') i++; else if (c == quote) quote = '\0'; continue; }
                if (c is '\'' or '"') { quote = c; continue; }
            }
            if (c == close[0] && s[i + 1] == close[1]) return i;
        }
        return -1;
    }

    /// <summary>lstrip_blocks: drop spaces/tabs before a block tag when only they separate it from the line start.</summary>
    private static string LstripBlock(string chunk, bool atLineStart)
    {
        int j = chunk.Length;
        while (j > 0 && chunk[j - 1] is ' ' or '\t') j--;
        return (j == 0 && atLineStart) || (j > 0 && chunk[j - 1] == '\n') ? chunk[..j] : chunk;
    }
}
