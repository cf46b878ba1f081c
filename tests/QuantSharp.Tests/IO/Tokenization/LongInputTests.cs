using System.Diagnostics;
using QuantSharp.IO.Tokenization;
using Xunit.Abstractions;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>
/// Inputs that make a naive BPE quadratic: one pre-token of hundreds of thousands of characters (no spaces), and
/// huge whitespace runs. They must still encode in seconds and round-trip.
/// </summary>
public sealed class LongInputTests(ITestOutputHelper output)
{
    private static readonly Lazy<BpeTokenizer> Tok = new(() => BpeTokenizer.FromDirectory(Fixtures.MicroQwen3));

    public static TheoryData<string, string> Inputs()
    {
        var random = new Random(1234);
        var letters = new char[300_000];
        for (int k = 0; k < letters.Length; k++) letters[k] = (char)('a' + random.Next(26));
        return new()
        {
            { "300k random letters", new string(letters) },
            { "200k 'ab'", string.Concat(Enumerable.Repeat("ab", 100_000)) },
            { "200k spaces then a word", new string(' ', 200_000) + "word" },
            { "100k newlines", new string('\n', 100_000) },
            { "50k emoji", string.Concat(Enumerable.Repeat("🙂", 50_000)) },
        };
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void LongWord_EncodesQuicklyAndRoundTrips(string name, string text)
    {
        var tok = Tok.Value;
        var sw = Stopwatch.StartNew();
        int[] ids = tok.Encode(text);
        sw.Stop();
        output.WriteLine($"{name}: {ids.Length:N0} ids in {sw.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(tok.Decode(ids) == text, $"{name} does not round-trip");
    }
}
