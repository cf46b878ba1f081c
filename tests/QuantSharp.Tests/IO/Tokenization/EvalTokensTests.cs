using System.Diagnostics;
using System.Text.Json;
using QuantSharp.IO.Tokenization;
using Xunit.Abstractions;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>
/// The correctness target: eval_a.txt must encode to exactly the ids the Hugging Face tokenizers library produced
/// (stored in eval_a.tokens.safetensors), fast enough for perplexity runs, and decode back to the same text.
/// </summary>
public sealed class EvalTokensTests(ITestOutputHelper output)
{
    [Fact]
    public void Encode_EvalA_MatchesHuggingFaceIdsExactly()
    {
        var tokenizer = BpeTokenizer.FromDirectory(Fixtures.MicroQwen3);
        string text = File.ReadAllText(Fixtures.EvalText);
        int[] expected = Golden.EvalTokens();
        Assert.Equal(525_770, expected.Length);

        var sw = Stopwatch.StartNew();
        int[] actual = tokenizer.Encode(text);
        sw.Stop();
        output.WriteLine($"encoded {text.Length:N0} chars into {actual.Length:N0} ids in {sw.Elapsed.TotalMilliseconds:F0} ms");

        int n = Math.Min(expected.Length, actual.Length);
        int first = 0;
        while (first < n && expected[first] == actual[first]) first++;
        if (first < n || expected.Length != actual.Length)
            Assert.Fail(DescribeMismatch(tokenizer, expected, actual, first));
    }

    [Fact]
    public void Decode_EvalA_RoundTrips()
    {
        var tokenizer = BpeTokenizer.FromDirectory(Fixtures.MicroQwen3);
        string text = File.ReadAllText(Fixtures.EvalText);
        string decoded = tokenizer.Decode(tokenizer.Encode(text));
        if (decoded != text)
        {
            int i = 0;
            while (i < Math.Min(text.Length, decoded.Length) && text[i] == decoded[i]) i++;
            Assert.Fail($"round trip differs at char {i}: expected {Snippet(text, i)}, got {Snippet(decoded, i)}");
        }
    }

    [Fact]
    public void Encode_IsThreadSafe()
    {
        // Chunks at line starts, encoded concurrently by one fresh tokenizer (shared cache and scratch buffers)
        // and sequentially by another.
        string text = File.ReadAllText(Fixtures.EvalText)[..400_000];
        var chunks = new List<string>();
        for (int start = 0; start < text.Length;)
        {
            int end = text.IndexOf('\n', Math.Min(text.Length - 1, start + 25_000));
            end = end < 0 ? text.Length : end + 1;
            chunks.Add(text[start..end]);
            start = end;
        }
        var sequential = BpeTokenizer.FromDirectory(Fixtures.MicroQwen3);
        var concurrent = BpeTokenizer.FromDirectory(Fixtures.MicroQwen3);
        int[][] expected = chunks.Select(c => sequential.Encode(c)).ToArray();
        var actual = new int[chunks.Count][];
        Parallel.For(0, chunks.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k => actual[k] = concurrent.Encode(chunks[k]));
        for (int k = 0; k < chunks.Count; k++) Assert.Equal(expected[k], actual[k]);
    }

    private static string DescribeMismatch(BpeTokenizer tok, int[] expected, int[] actual, int first)
    {
        string Window(int[] ids)
        {
            int from = Math.Max(0, first - 5), to = Math.Min(ids.Length, first + 6);
            return string.Join(" ", ids[from..to].Select((id, k) =>
                (from + k == first ? ">" : "") + $"{id}:{JsonSerializer.Serialize(tok.Decode([id]))}"));
        }
        int from = Math.Max(0, first - 20);
        return $"ids differ first at index {first} (expected {expected.Length} ids, got {actual.Length}).\n" +
               $"text there: {JsonSerializer.Serialize(tok.Decode(expected[from..Math.Min(expected.Length, first + 20)]))}\n" +
               $"expected: {Window(expected)}\nactual:   {Window(actual)}";
    }

    private static string Snippet(string s, int i) =>
        JsonSerializer.Serialize(s.Substring(Math.Max(0, i - 20), Math.Min(s.Length, i + 20) - Math.Max(0, i - 20)));

}
