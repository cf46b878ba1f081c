using QuantSharp.Algorithms.FlatQuant;
using QuantSharp.Models;
using QuantSharp.Models.Layers;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

public class QuantizedKvCacheTests
{
    [Theory]
    [InlineData(4, true, 64)]
    [InlineData(4, false, 32)]
    [InlineData(3, true, 64)]
    [InlineData(8, true, 16)]
    public void CodesDecodeToExactlyTheFakeQuantizedValues(int bits, bool asymmetric, int group)
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        Tensor k = randn(2, 3, 7, 64);
        using var hook = new KvCacheHook(new KvCacheSpec(bits, bits, group, asymmetric), 64,
            keyClip: (tensor(0.9f), tensor(0.8f)));
        using var stored = hook.Encode(k, keys: true);
        Tensor decoded = hook.Decode(stored, float32, keys: true);
        Assert.True(decoded.eq(hook.QuantizeKeys(k)).all().item<bool>(), "decoded codes differ from FakeQuant");
        // Up to 4 bits two codes share a byte; scales (and zero points) are one float per group.
        long codeBytes = bits <= 4 ? 2 * 3 * 7 * 32 : 2 * 3 * 7 * 64;
        long groups = 2 * 3 * 7 * (64 / group);
        Assert.Equal(codeBytes + groups * 4 * (asymmetric ? 2 : 1), stored.Bytes);
    }

    [Fact]
    public void GenerationWithACodeCacheMatchesTheFakeQuantizedForwardAndHoldsAFractionOfTheBytes()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        int hd = model.Config.HeadDim;
        var hooks = model.Layers.Select(l =>
        {
            var h = new KvCacheHook(new KvCacheSpec(4, 4, 128, true), hd, keyTransform: TransformMatrix.RandomOrthogonal(hd, 3 + l.Index) + eye(hd) * 0.2);
            l.SelfAttn.KvHook = h;
            return h;
        }).ToList();
        int[] prompt = [5, 17, 42, 7, 99, 3, 250, 11];
        var options = new GenerationOptions(MaxNewTokens: 12);
        int[] generated = TextGenerator.Generate(model, prompt, options);

        // The same tokens scored by one full-sequence forward (fake-quantized K/V, no cache) pick the same next tokens.
        using var _ = no_grad();
        var all = prompt.Concat(generated).Select(t => (long)t).ToArray();
        var logits = model.Forward(tensor(all, [1, all.Length], int64), null);
        var greedy = logits[0].argmax(-1).data<long>().ToArray();
        for (int i = 0; i < generated.Length - 1; i++)
            Assert.Equal(generated[i + 1], (int)greedy[prompt.Length + i]);

        // Stored codes vs dense floats for the same positions.
        using var codeCache = new KvCache(model.Config.NumLayers, storeCodes: true);
        using var denseCache = new KvCache(model.Config.NumLayers);
        var ids = tensor(all, [1, all.Length], int64);
        var a = model.Forward(ids, codeCache);
        var b = model.Forward(ids, denseCache);
        Assert.True(a.allclose(b, rtol: 0, atol: 1e-5), "cached-codes forward differs from the dense-cache forward");
        double ratio = (double)codeCache.Bytes / denseCache.Bytes;
        Assert.InRange(ratio, 0.10, 0.20);   // 4 bits + a float scale and zero per 128 values vs 32-bit floats ≈ 0.14
        foreach (var h in hooks) h.Dispose();
    }
}
