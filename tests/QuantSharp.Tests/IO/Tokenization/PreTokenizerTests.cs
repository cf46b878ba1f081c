using QuantSharp.IO.Tokenization;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>
/// The split regexes must cut text as Oniguruma does in tokenizers: per code point (astral letters are \p{L}, an
/// emoji is never cut between its surrogates), with Oniguruma-only syntax translated.
/// </summary>
public sealed class PreTokenizerTests
{
    [Theory]
    [InlineData("Hello world 12345", new[] { "Hello", " world", " ", "123", "45" })]
    [InlineData(" 🙂🙂 x", new[] { " 🙂🙂", " x" })]
    [InlineData(" 𝐀𝐁c", new[] { " 𝐀𝐁c" })] // astral letters are letters: one word with its leading space
    [InlineData("a\r\n\r\nb", new[] { "a", "\r\n\r\n", "b" })]
    [InlineData("x   y", new[] { "x", "  ", " y" })]
    [InlineData("I'M here", new[] { "I", "'M", " here" })]
    public void Llama3Pattern_SplitsPerCodePoint(string text, string[] expected) =>
        Assert.Equal(expected, Split(TokenizerVariants.Llama3Pattern, text));

    [Fact]
    public void Qwen2Pattern_SplitsDigitsOneByOne() =>
        Assert.Equal(["In", " ", "2", "0", "2", "4", ",", " we"], Split(TokenizerVariants.Qwen2Pattern, "In 2024, we"));

    [Fact]
    public void LongS_FoldsLikeOniguruma()
    {
        // Oniguruma case-folds U+017F to 's', so (?i:'s) takes "'ſ" as a contraction; .NET alone would not.
        Assert.Equal(["don", "'ſ", "t"], Split(TokenizerVariants.Llama3Pattern, "don'ſt"));
        Assert.Equal(["It", "'S"], Split(TokenizerVariants.Llama3Pattern, "It'S"));
    }

    [Fact]
    public void Gpt2Pattern_TreatsAstralLettersAsLetters()
    {
        Assert.Equal(["a𝐀b", " 😀"], Split(ByteLevelPreTokenizer.Gpt2Pattern, "a𝐀b 😀"));
        Assert.Equal(["𝟘𝟙", "!"], Split(ByteLevelPreTokenizer.Gpt2Pattern, "𝟘𝟙!")); // mathematical digits are \p{N}
    }

    [Fact]
    public void SingleCharacterClass_NeverSplitsASurrogatePair()
    {
        var regex = CodePointRegex.FromOniguruma(@"[^\s\p{L}\p{N}]");
        var matches = new List<(int Start, int End)>();
        regex.Matches("a🙂b👨‍👩", matches);
        // 🙂 (2 units), 👨 (2), ZWJ (1), 👩 (2)
        Assert.Equal([(1, 3), (4, 6), (6, 7), (7, 9)], matches);
    }

    [Fact]
    public void UnpairedSurrogates_DoNotThrow()
    {
        var matches = new List<(int Start, int End)>();
        CodePointRegex.FromOniguruma(@"\p{L}+|[^\p{L}]").Matches("a\uD800b\uDC00", matches);
        Assert.Equal([(0, 1), (1, 2), (2, 3), (3, 4)], matches);
    }

    [Theory]
    // cl100k as tiktoken writes it (possessive quantifiers)
    [InlineData(@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+", "don't 1234", new[] { "don", "'t", " ", "123", "4" })]
    // o200k (GPT-4o)
    [InlineData(@"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+", "HelloWorld's 1234", new[] { "Hello", "World's", " ", "123", "4" })]
    // two of DeepSeek-V3's Split patterns
    [InlineData(@"[一-龥぀-ゟ゠-ヿ]+", "日本語 テキスト!", new[] { "日本語", " ", "テキスト", "!" })]
    [InlineData(@"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "a.b {x}", new[] { "a", ".b", " {", "x", "}" })]
    public void RealWorldPatterns_AreTranslated(string pattern, string text, string[] expected) =>
        Assert.Equal(expected, Split(pattern, text));

    [Theory]
    [InlineData(@"a++b", @"(?>a+)b")]
    [InlineData(@"[a-z]*+x", @"(?>[a-z]*)x")]
    [InlineData(@"(ab)?+", @"(?>(ab)?)")]
    [InlineData(@"\pL\p{^N}\P{^L}", @"\p{L}\P{N}\p{L}")]
    [InlineData(@"\p{Letter}", @"\p{L}")]
    [InlineData(@"\h+", @"[0-9a-fA-F]+")]
    [InlineData(@"\x{4E00}", @"\u4E00")]
    [InlineData(@"(?i:'s|'t)", "(?i:'[sS\u017F]|'t)")]
    [InlineData(@"a{2,3}+", @"(?:a{2,3})+")]
    [InlineData(@"(?<=x)y(?!z)", @"(?<=x)y(?!z)")]
    [InlineData(@"\p{N}{1,3}", @"\p{N}{1,3}")]
    public void OnigurumaSyntax_IsTranslated(string onig, string dotnet) =>
        Assert.Equal(dotnet, OnigurumaPattern.ToDotNet(onig));

    [Theory]
    [InlineData("Isolated", false, new[] { "The", "-", "final", "-", "-", "countdown" })]
    [InlineData("Removed", false, new[] { "The", "final", "countdown" })]
    [InlineData("MergedWithPrevious", false, new[] { "The-", "final-", "-", "countdown" })]
    [InlineData("MergedWithNext", false, new[] { "The", "-final", "-", "-countdown" })]
    [InlineData("Contiguous", false, new[] { "The", "-", "final", "--", "countdown" })]
    [InlineData("Removed", true, new[] { "-", "-", "-" })]
    public void SplitBehaviors_MatchTokenizers(string behavior, bool invert, string[] expected)
    {
        // The example tokenizers' NormalizedString::split tests use: "-" on "The-final--countdown".
        var output = new List<string>();
        new SplitPreTokenizer(CodePointRegex.FromLiteral("-"), SplitBehaviors.Parse(behavior), invert).Split("The-final--countdown", output);
        Assert.Equal(expected, output);
    }

    private static List<string> Split(string pattern, string text)
    {
        var output = new List<string>();
        new SplitPreTokenizer(CodePointRegex.FromOniguruma(pattern), SplitBehavior.Isolated, invert: false).Split(text, output);
        return output;
    }
}
