namespace QuantSharp.IO.Tokenization;

/// <summary>
/// GPT-2's reversible byte to printable-character table ("bytes_to_unicode"). Byte-level BPE vocabularies store
/// tokens as strings of these characters so that every byte sequence, valid UTF-8 or not, has a textual form
/// without spaces or control characters: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100+n.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>Character for each byte value.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    // Inverse table over the (small) character range the alphabet uses; -1 where a character is not in it.
    private static readonly short[] CharToByteTable = BuildCharToByte();

    /// <summary>The byte a byte-level character stands for, or -1 when <paramref name="c"/> is not in the alphabet.</summary>
    public static int CharToByte(char c) => c < CharToByteTable.Length ? CharToByteTable[c] : -1;

    /// <summary>UTF-8 encodes <paramref name="text"/> and spells each byte with its alphabet character.</summary>
    public static string Encode(ReadOnlySpan<char> text)
    {
        // Most pre-tokens are short words: encode on the stack and allocate only the result string.
        int maxBytes = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[]? rented = null;
        Span<byte> bytes = maxBytes <= 512 ? stackalloc byte[512] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            int n = System.Text.Encoding.UTF8.GetBytes(text, bytes);
            return string.Create(n, bytes[..n], static (dst, src) =>
            {
                for (int i = 0; i < dst.Length; i++) dst[i] = ByteToChar[src[i]];
            });
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static char[] BuildByteToChar()
    {
        // Same construction as GPT-2's encoder.py: '!'..'~', '¡'..'¬', '®'..'ÿ' keep their code; the remaining
        // bytes, in increasing order, get 256, 257, ...
        var map = new char[256];
        var kept = new bool[256];
        for (int b = '!'; b <= '~'; b++) kept[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) kept[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) kept[b] = true;
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = kept[b] ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var table = new short[324]; // the highest character is U+0143
        Array.Fill(table, (short)-1);
        for (int b = 0; b < 256; b++) table[ByteToChar[b]] = (short)b;
        return table;
    }
}
