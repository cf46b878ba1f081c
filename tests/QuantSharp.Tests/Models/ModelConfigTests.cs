using QuantSharp.Models;

namespace QuantSharp.Tests.Models;

public class ModelConfigTests
{
    private const string LlamaJson = """
        {"model_type":"llama","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
         "num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"rms_norm_eps":1e-5,
         "max_position_embeddings":131072,"hidden_act":"silu","tie_word_embeddings":false,
         "rope_theta":500000.0,
         "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                         "original_max_position_embeddings":8192,"rope_type":"llama3"}}
        """;

    [Fact]
    public void ParsesMicroQwen3()
    {
        var c = ModelConfig.Load(Fixtures.MicroQwen3);
        Assert.Equal(ModelFamily.Qwen3, c.Family);
        Assert.Equal(256, c.HiddenSize);
        Assert.Equal(768, c.IntermediateSize);
        Assert.Equal(4, c.NumLayers);
        Assert.Equal(4, c.NumHeads);
        Assert.Equal(2, c.NumKvHeads);
        Assert.Equal(64, c.HeadDim);
        Assert.True(c.TieWordEmbeddings);
        Assert.True(c.QkNorm);
        Assert.False(c.QkvBias);
        Assert.Equal(1e6, c.Rope.Theta);
        Assert.Equal(RopeType.Default, c.Rope.Type);
        Assert.Equal(1e-6, c.RmsNormEps);
    }

    [Fact]
    public void ParsesLegacyLlama31RopeScaling()
    {
        var c = ModelConfig.Parse(LlamaJson, "config.json");
        Assert.Equal(ModelFamily.Llama, c.Family);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(RopeType.Llama3, c.Rope.Type);
        Assert.Equal(8.0, c.Rope.Factor);
        Assert.Equal(8192, c.Rope.OriginalMaxPositionEmbeddings);
        float[] inv = c.Rope.InverseFrequencies(128);
        Assert.Equal(64, inv.Length);
        // High frequencies (wavelength < 8192/4) are kept; low ones (wavelength > 8192) are divided by 8.
        Assert.Equal(1.0f, inv[0]);
        double plain63 = 1.0 / Math.Pow(500000.0, 126.0 / 128.0);
        Assert.Equal(plain63 / 8.0, inv[63], 1e-9);
        // A medium frequency is a blend strictly between the two.
        int mid = Enumerable.Range(0, 64).First(i =>
        {
            double w = 2 * Math.PI * Math.Pow(500000.0, 2.0 * i / 128);
            return w >= 2048 && w <= 8192;
        });
        double plain = 1.0 / Math.Pow(500000.0, 2.0 * mid / 128);
        Assert.InRange(inv[mid], plain / 8 * 0.999, plain * 1.001);
    }

    [Fact]
    public void ParsesRopeParametersAndQwen2Biases()
    {
        string json = """
            {"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,
             "num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,"rms_norm_eps":1e-6,
             "tie_word_embeddings":true,"rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"}}
            """;
        var c = ModelConfig.Parse(json, "config.json");
        Assert.Equal(ModelFamily.Qwen2, c.Family);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(1e6, c.Rope.Theta);
    }

    [Fact]
    public void ExplicitHeadDimWins()
    {
        string json = LlamaJson.Replace("\"model_type\":\"llama\"", "\"model_type\":\"mistral\",\"head_dim\":96");
        Assert.Equal(96, ModelConfig.Parse(json, "config.json").HeadDim);
    }

    [Theory]
    [InlineData("\"model_type\":\"llama\"", "\"model_type\":\"gpt_neox\"", "unsupported model_type 'gpt_neox'")]
    [InlineData("\"hidden_act\":\"silu\"", "\"hidden_act\":\"gelu\"", "unsupported hidden_act 'gelu'")]
    [InlineData("\"rope_type\":\"llama3\"", "\"rope_type\":\"yarn\"", "unsupported rope type 'yarn'")]
    [InlineData("\"num_key_value_heads\":8", "\"num_key_value_heads\":5", "multiple of num_key_value_heads")]
    public void RejectsUnsupportedConfigs(string from, string to, string expected)
    {
        var e = Assert.Throws<InvalidFileException>(() => ModelConfig.Parse(LlamaJson.Replace(from, to), "/m/config.json"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("/m/config.json", e.Message);
    }

    [Fact]
    public void MissingConfigNamesThePath()
    {
        using var dir = Fixtures.NewTempDir();
        var e = Assert.Throws<QuantSharpException>(() => ModelConfig.Load(dir.Path));
        Assert.Contains("config.json", e.Message);
    }
}
