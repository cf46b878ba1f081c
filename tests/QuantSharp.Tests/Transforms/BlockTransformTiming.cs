using System.Diagnostics;
using QuantSharp.Backend;
using QuantSharp.Transforms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Transforms;

/// <summary>Reports (does not assert) the cost of one activation rotation at a Llama-8B-like width.</summary>
public sealed class BlockTransformTiming(ITestOutputHelper output)
{
    [Fact]
    public void Time_apply_to_activations_4096_by_4096_fp32_g128()
    {
        TorchRuntime.EnsureNativeLoaded();
        using var scope = NewDisposeScope();
        using BlockTransform transform = BlockTransform.Create(TransformKind.Hadamard, 4096, 128);
        Tensor x = randn(new long[] { 4096, 4096 }, generator: new Generator(1, CPU));
        transform.ApplyToActivations(x).Dispose(); // warm-up: thread pool and allocator

        const int runs = 5;
        var timings = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            transform.ApplyToActivations(x).Dispose();
            timings[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(timings);
        output.WriteLine($"ApplyToActivations [4096, 4096] fp32, g=128, {get_num_threads()} threads: " +
                         $"median {timings[runs / 2]:F1} ms, min {timings[0]:F1} ms, max {timings[^1]:F1} ms");
    }
}
