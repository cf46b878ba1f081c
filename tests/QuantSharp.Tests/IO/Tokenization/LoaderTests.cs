using System.Text.Json.Nodes;
using QuantSharp.IO.Tokenization;

namespace QuantSharp.Tests.IO.Tokenization;

/// <summary>tokenizer.json forms that must load the same, and broken files that must be reported by name.</summary>
public sealed class LoaderTests
{
    private static readonly Lazy<string> Sample = new(() =>
        File.ReadAllText(Fixtures.EvalText)[..20_000] + " 🙂 𝐀𝐁 日本語 \r\n\t  end");

    [Fact]
    public void LegacyStringMerges_GiveTheSameIds()
    {
        var reference = BpeTokenizer.FromFile(Path.Combine(Fixtures.MicroQwen3, "tokenizer.json"));
        var legacy = TokenizerVariants.Load(TokenizerVariants.WithLegacyMerges);
        Assert.Equal(reference.Encode(Sample.Value), legacy.Encode(Sample.Value));
    }

    [Fact]
    public void Llama3SplitSequence_AgreesWithGpt2WhereTheirSplitsAgree()
    {
        // Plain words and punctuation are pre-tokenized alike by the two regexes, so the ids must be equal.
        var gpt2 = BpeTokenizer.FromFile(Path.Combine(Fixtures.MicroQwen3, "tokenizer.json"));
        var llama3 = TokenizerVariants.Load(TokenizerVariants.WithLlama3PreTokenizer);
        const string text = "The President spoke to the Congress, and the nation listened.";
        Assert.Equal(gpt2.Encode(text), llama3.Encode(text));
        // ... and differ where they must: Llama-3 cuts numbers into groups of at most three digits.
        Assert.NotEqual(gpt2.Encode("In 123456 ways"), llama3.Encode("In 123456 ways"));
        Assert.Equal(llama3.Encode("In 123").Concat(llama3.Encode("456")).Concat(llama3.Encode(" ways")), llama3.Encode("In 123456 ways"));
    }

    [Fact]
    public void NfcNormalizer_IsApplied()
    {
        var json = TokenizerVariants.Original();
        json["normalizer"] = JsonNode.Parse("""{"type": "Sequence", "normalizers": [{"type": "NFC"}]}""");
        using var dir = new TempDir();
        var tok = BpeTokenizer.FromFile(TokenizerVariants.Write(dir, json));
        Assert.Equal(tok.Encode("caf\u00E9"), tok.Encode("cafe\u0301"));
    }

    [Fact]
    public void FromDirectory_WithoutConfig_Works()
    {
        using var dir = new TempDir();
        TokenizerVariants.Write(dir, TokenizerVariants.Original());
        var tok = BpeTokenizer.FromDirectory(dir.Path);
        Assert.Equal(0, tok.BosTokenId);
        Assert.Equal(8192, tok.VocabSize);
    }

    [Fact]
    public void MissingFile_NamesTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        var e = Assert.Throws<InvalidFileException>(() => BpeTokenizer.FromFile(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("not found", e.Message);
        var e2 = Assert.Throws<InvalidFileException>(() => BpeTokenizer.FromDirectory(dir.Path));
        Assert.Equal(path, e2.FilePath);
    }

    [Fact]
    public void BadJson_NamesTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        File.WriteAllText(path, "{\"model\": {\"type\": \"BPE\", ");
        var e = Assert.Throws<InvalidFileException>(() => BpeTokenizer.FromFile(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("JSON", e.Message);
    }

    [Theory]
    [InlineData("WordPiece")]
    [InlineData("Unigram")]
    public void NonBpeModel_IsRejected(string type)
    {
        var json = TokenizerVariants.Original();
        json["model"]!["type"] = type;
        var e = AssertInvalid(json);
        Assert.Contains(type, e.Message);
        Assert.Contains("BPE", e.Message);
    }

    [Fact]
    public void MergeWithUnknownToken_IsRejected()
    {
        var json = TokenizerVariants.Original();
        json["model"]!["merges"]!.AsArray().Add(new JsonArray("Ġthe", "no-such-token"));
        var e = AssertInvalid(json);
        Assert.Contains("no-such-token", e.Message);
        Assert.Contains("not in the vocab", e.Message);
    }

    [Fact]
    public void MergeWhoseResultIsNotInVocab_IsRejected()
    {
        var json = TokenizerVariants.Original();
        json["model"]!["merges"]!.AsArray().Add(new JsonArray("q", "q"));
        var e = AssertInvalid(json);
        Assert.Contains("'qq'", e.Message);
    }

    [Fact]
    public void MalformedLegacyMerge_IsRejected()
    {
        var json = TokenizerVariants.Original();
        json["model"]!["merges"] = new JsonArray("a b c");
        Assert.Contains("two tokens", AssertInvalid(json).Message);
    }

    [Fact]
    public void UnsupportedPreTokenizer_IsRejectedByName()
    {
        var json = TokenizerVariants.Original();
        json["pre_tokenizer"] = JsonNode.Parse("""{"type": "Metaspace", "replacement": "▁"}""");
        Assert.Contains("Metaspace", AssertInvalid(json).Message);
    }

    [Fact]
    public void BadSplitRegex_IsRejectedWithThePattern()
    {
        var json = TokenizerVariants.WithSplitPreTokenizer(@"(\p{L}+");
        Assert.Contains(@"(\p{L}+", AssertInvalid(json).Message);
    }

    [Fact]
    public void MissingVocab_SaysWhere()
    {
        var json = TokenizerVariants.Original();
        json["model"]!.AsObject().Remove("vocab");
        Assert.Contains("$.model.vocab", AssertInvalid(json).Message);
    }

    [Fact]
    public void ConfigNamingUnknownToken_NamesTheConfig()
    {
        using var dir = new TempDir();
        TokenizerVariants.Write(dir, TokenizerVariants.Original());
        string config = dir.File("tokenizer_config.json");
        File.WriteAllText(config, """{"bos_token": "<s>", "eos_token": {"content": "<|end_of_text|>"}}""");
        var e = Assert.Throws<InvalidFileException>(() => BpeTokenizer.FromDirectory(dir.Path));
        Assert.Equal(config, e.FilePath);
        Assert.Contains("<s>", e.Message);
    }

    [Fact]
    public void ConfigWithNullBos_MeansNoBos()
    {
        using var dir = new TempDir();
        TokenizerVariants.Write(dir, TokenizerVariants.Original());
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": null, "eos_token": {"content": "<|pad|>"}}""");
        var tok = BpeTokenizer.FromDirectory(dir.Path);
        Assert.Null(tok.BosTokenId);
        Assert.Equal(2, tok.EosTokenId);
    }

    private static InvalidFileException AssertInvalid(JsonObject json)
    {
        using var dir = new TempDir();
        string path = TokenizerVariants.Write(dir, json);
        var e = Assert.Throws<InvalidFileException>(() => BpeTokenizer.FromFile(path));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path, e.Message);
        return e;
    }
}
