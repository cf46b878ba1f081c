using QuantSharp.IO.Tokenization;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>
/// decode(encode(x)) == x for text that stresses the byte-level path: characters split across tokens, surrogate
/// pairs, whitespace runs the split regex treats specially. Checked with the GPT-2 style pre-tokenizer of micro-qwen3
/// and with the Llama-3 style Split + ByteLevel sequence.
/// </summary>
public sealed class RoundTripTests
{
    private static readonly Lazy<BpeTokenizer> Gpt2Style = new(() => BpeTokenizer.FromDirectory(Fixtures.MicroQwen3));
    private static readonly Lazy<BpeTokenizer> Llama3Style = new(() => TokenizerVariants.Load(TokenizerVariants.WithLlama3PreTokenizer));

    public static TheoryData<string, string> Texts => new()
    {
        { "empty", "" },
        { "ascii", "Hello, world! It's 2024; we've done 3.14 things." },
        { "emoji", "I like 🙂 and 🎉🎉 a lot" },
        { "zwj-sequence", "family: 👨‍👩‍👧‍👦, flag: 🏳️‍🌈, skin tone: 👋🏽" },
        { "astral letters and cjk ext-b", "𝐀𝐁𝐂 bold, 𠀀𠀁 ext-B, 𝟘𝟙 digits" },
        { "cjk", "日本語のテキスト、中文文本。한국어" },
        { "combining marks", "e\u0301 a\u0308 n\u0303 \u0915\u093F Z\u0351\u0352\u0353" },
        { "tabs", "\tcol1\t\tcol2\t" },
        { "runs of spaces", "a  b   c    d                e" },
        { "crlf", "line1\r\nline2\r\n\r\nline3\r\n" },
        { "many newlines", "para\n\n\n\n\n\n\n\nnext\n\n" },
        { "leading and trailing spaces", "   padded text   " },
        { "only whitespace", " \t\r\n \u00A0\u3000 " },
        { "contractions", "I'm, you're, they've, he'll, she'd, it's, DON'T, 'ſt" },
        { "mixed scripts", "Ελληνικά, русский, עברית, العربية, हिन्दी" },
        { "special-looking text", "<|not_special|> <| |>" },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void RoundTrips_Gpt2Style(string name, string text) => AssertRoundTrip(Gpt2Style.Value, name, text);

    [Theory]
    [MemberData(nameof(Texts))]
    public void RoundTrips_Llama3Style(string name, string text) => AssertRoundTrip(Llama3Style.Value, name, text);

    [Fact]
    public void EmptyString_EncodesToNothing()
    {
        Assert.Empty(Gpt2Style.Value.Encode(""));
        Assert.Equal("", Gpt2Style.Value.Decode([]));
    }

    [Fact]
    public void Emoji_SplitAcrossTokens_DecodesWholeOnlyTogether()
    {
        // A 4-byte emoji is not one token in an 8k vocabulary; its bytes are only valid UTF-8 together.
        var tok = Gpt2Style.Value;
        int[] ids = tok.Encode("🙂");
        Assert.True(ids.Length > 1);
        Assert.Equal("🙂", tok.Decode(ids));
        Assert.Contains('\uFFFD', tok.Decode(ids[..1]));
    }

    private static void AssertRoundTrip(BpeTokenizer tok, string name, string text)
    {
        int[] ids = tok.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, 3, tok.VocabSize - 1)); // no special tokens appear
        string decoded = tok.Decode(ids);
        Assert.True(decoded == text, $"{name}: expected {Escape(text)}, got {Escape(decoded)}");
    }

    private static string Escape(string s) => System.Text.Json.JsonSerializer.Serialize(s);
}
