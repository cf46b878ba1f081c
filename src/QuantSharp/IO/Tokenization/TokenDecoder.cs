using System.Text;

namespace QuantSharp.IO.Tokenization;

/// <summary>
/// Turns token strings back into text. For byte-level tokenizers (decoder "ByteLevel") every token's characters are
/// mapped back to bytes, all bytes are concatenated, and only then UTF-8 decoded: a character split across tokens
/// (emoji, CJK) is whole again. Without a decoder, tokenizers joins token strings with spaces.
/// </summary>
internal sealed class TokenDecoder
{
    private readonly bool _byteLevel;

    private TokenDecoder(bool byteLevel) => _byteLevel = byteLevel;

    public static TokenDecoder ByteLevel { get; } = new(true);

    /// <summary>tokenizers' behaviour with "decoder": null.</summary>
    public static TokenDecoder JoinWithSpaces { get; } = new(false);

    public string Decode(IReadOnlyList<string> tokens)
    {
        if (!_byteLevel) return string.Join(' ', tokens);
        var bytes = new List<byte>(tokens.Count * 4);
        foreach (string token in tokens)
        {
            int mark = bytes.Count;
            bool allMapped = true;
            foreach (char c in token)
            {
                int b = ByteLevelAlphabet.CharToByte(c);
                if (b < 0) { allMapped = false; break; }
                bytes.Add((byte)b);
            }
            // A token outside the byte alphabet (an added token with other characters) stands for its own UTF-8,
            // as in tokenizers' ByteLevel decoder.
            if (!allMapped)
            {
                bytes.RemoveRange(mark, bytes.Count - mark);
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
        }
        // Invalid UTF-8 (a prefix of a multi-byte character) becomes U+FFFD, like Rust's from_utf8_lossy.
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }
}
