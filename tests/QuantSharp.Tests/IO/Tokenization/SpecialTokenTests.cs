using QuantSharp.IO.Tokenization;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>Added/special tokens, the post-processor's BOS, and the id/token tables.</summary>
public sealed class SpecialTokenTests
{
    private static readonly Lazy<BpeTokenizer> Tok = new(() => BpeTokenizer.FromDirectory(Fixtures.MicroQwen3));

    [Fact]
    public void Ids_ComeFromConfigAndVocab()
    {
        var tok = Tok.Value;
        Assert.Equal(8192, tok.VocabSize);
        Assert.Equal(0, tok.BosTokenId);
        Assert.Equal(1, tok.EosTokenId);
        Assert.Equal(2, tok.PadTokenId);
        Assert.Equal("<|end_of_text|>", tok.IdToToken(1));
        Assert.Equal(1, tok.TokenToId("<|end_of_text|>"));
        Assert.Null(tok.IdToToken(8192));
        Assert.Null(tok.IdToToken(-1));
        Assert.Null(tok.TokenToId("no such token"));
        Assert.True(tok.IsSpecialToken(0));
        Assert.False(tok.IsSpecialToken(100));
    }

    [Fact]
    public void FromFile_WithoutConfig_TakesBosFromTemplateAndEosPadByName()
    {
        var tok = BpeTokenizer.FromFile(Path.Combine(Fixtures.MicroQwen3, "tokenizer.json"));
        Assert.Equal(0, tok.BosTokenId);
        Assert.Equal(1, tok.EosTokenId);
        Assert.Equal(2, tok.PadTokenId);
    }

    [Fact]
    public void AddSpecialTokens_PrependsBos()
    {
        var tok = Tok.Value;
        int[] plain = tok.Encode("Hello world");
        int[] withBos = tok.Encode("Hello world", addSpecialTokens: true);
        Assert.Equal(0, withBos[0]);
        Assert.Equal(plain, withBos[1..]);
        Assert.Equal([0], tok.Encode("", addSpecialTokens: true));
    }

    [Fact]
    public void LiteralSpecialToken_EncodesToItsId()
    {
        var tok = Tok.Value;
        int[] ids = tok.Encode("end.<|end_of_text|>Next");
        int at = Array.IndexOf(ids, 1);
        Assert.True(at > 0, "expected id 1 for <|end_of_text|>");
        Assert.Equal(tok.Encode("end."), ids[..at]);
        Assert.Equal(tok.Encode("Next"), ids[(at + 1)..]);
        Assert.Equal([0, 1, 2], tok.Encode("<|begin_of_text|><|end_of_text|><|pad|>"));
    }

    [Fact]
    public void SpecialTokenParsingOff_EncodesAsText()
    {
        var tok = Tok.Value;
        int[] ids = tok.Encode("a<|end_of_text|>", addSpecialTokens: false, parseSpecialTokens: false);
        Assert.DoesNotContain(1, ids);
        Assert.Equal("a<|end_of_text|>", tok.Decode(ids));
    }

    [Fact]
    public void Decode_KeepsOrSkipsSpecialTokens()
    {
        var tok = Tok.Value;
        int[] ids = tok.Encode("Hi<|end_of_text|>", addSpecialTokens: true);
        Assert.Equal("<|begin_of_text|>Hi<|end_of_text|>", tok.Decode(ids));
        Assert.Equal("Hi", tok.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Decode_SkipsIdsOutsideTheVocabulary()
    {
        var tok = Tok.Value;
        int[] ids = [.. tok.Encode("Hi"), 9000, -3];
        Assert.Equal("Hi", tok.Decode(ids));
    }

    [Fact]
    public void PartialSpecialToken_IsOrdinaryText()
    {
        var tok = Tok.Value;
        int[] ids = tok.Encode("-----|<|----> <|end_of_text");
        Assert.DoesNotContain(1, ids);
        Assert.Equal("-----|<|----> <|end_of_text", tok.Decode(ids));
    }
}
