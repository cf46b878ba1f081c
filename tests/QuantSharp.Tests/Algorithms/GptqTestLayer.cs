using QuantSharp.Algorithms.Gptq;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Algorithms;

/// <summary>A random 64×256 linear layer with correlated, unevenly scaled inputs (so H is far from diagonal).</summary>
internal sealed class GptqTestLayer : IDisposable
{
    private readonly DisposeScope _scope = NewDisposeScope();

    public GptqTestLayer(int seed, int outFeatures = 64, int inFeatures = 256, int tokens = 2048, int[]? deadColumns = null)
    {
        manual_seed(seed);
        Tensor mixing = eye(inFeatures).mul(0.5).add(randn(inFeatures, inFeatures).div(Math.Sqrt(inFeatures)));
        Tensor columnScale = randn(inFeatures).mul(0.75).exp();
        X = randn(tokens, inFeatures).matmul(mixing).mul(columnScale);
        if (deadColumns is not null)
            X.index_fill_(1, tensor(deadColumns.Select(c => (long)c).ToArray()), 0);
        W = randn(outFeatures, inFeatures).mul(0.02);
        using var accumulator = new HessianAccumulator(inFeatures);
        accumulator.Add(X.narrow(0, 0, tokens / 4));
        accumulator.Add(X.narrow(0, tokens / 4, tokens - tokens / 4));
        H = accumulator.Hessian.clone();
    }

    public Tensor X { get; }
    public Tensor W { get; }
    public Tensor H { get; }

    /// <summary>‖X Wᵀ − X Ŵᵀ‖_F: the layer's output error on its calibration inputs.</summary>
    public double OutputError(Tensor quantized)
    {
        using var scope = NewDisposeScope();
        return X.matmul(W.sub(quantized).t()).norm().item<float>();
    }

    public void Dispose() => _scope.Dispose();
}
