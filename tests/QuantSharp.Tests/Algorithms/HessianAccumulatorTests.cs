using QuantSharp.Algorithms.Gptq;
using TorchSharp;
using static QuantSharp.Tests.Formats.TensorAssert;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms;

public class HessianAccumulatorTests
{
    [Fact]
    public void RunningUpdateEqualsTwoOverNTimesXtX()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        Tensor a = randn(2, 5, 16), b = randn(7, 16).to(ScalarType.BFloat16);
        using var acc = new HessianAccumulator(16);
        acc.Add(a);
        acc.Add(b);
        Assert.Equal(17, acc.Tokens);
        Tensor all = cat([a.reshape(-1, 16), b.to(ScalarType.Float32)], 0);
        Tensor expected = all.t().matmul(all).mul(2.0 / 17);
        Close(Floats(expected), Floats(acc.Hessian), 1e-5f, 1e-5f);
    }

    [Fact]
    public void WrongWidthNamesTheLayer()
    {
        using var acc = new HessianAccumulator(16, layerName: "model.layers.3.self_attn.q_proj");
        using var x = zeros(4, 8);
        var e = Assert.Throws<QuantSharpException>(() => acc.Add(x));
        Assert.Contains("model.layers.3.self_attn.q_proj", e.Message);
    }
}
