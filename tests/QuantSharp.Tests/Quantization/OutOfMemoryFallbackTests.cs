using System.Runtime.InteropServices;
using QuantSharp.Models;
using QuantSharp.Quantization;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

/// <summary>
/// The CUDA out-of-memory fallback, exercised on CPU: a test hook throws libtorch's message at a chosen (layer, phase)
/// and the run must offload once, say so, and still give exactly the tensors of an uninterrupted run.
/// </summary>
public class OutOfMemoryFallbackTests
{
    private static Exception SimulatedOom() =>
        new ExternalException("CUDA out of memory. Tried to allocate 2.00 GiB (simulated by a test hook)");

    private static readonly Lazy<Dictionary<string, Tensor>> Uninterrupted = new(() =>
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, LayerCheckpointTests.MrGptq(), LayerCheckpointTests.Calibration());
        return LayerCheckpointTests.Snapshot(model, result);
    });

    /// <summary>A hook that throws the simulated error once, at the <paramref name="occurrence"/>-th visit of (layer, phase).</summary>
    private static Action<int, string> OnceAt(int layer, string phase, int occurrence = 1)
    {
        int seen = 0;
        return (l, p) =>
        {
            if (l == layer && p == phase && ++seen == occurrence) throw SimulatedOom();
        };
    }

    [Theory]
    [InlineData(1, "calibrate", 1)]
    [InlineData(2, "solve", 1)]
    [InlineData(0, "rerun", 2)] // the second of two calibration batches: the first was already replaced by its output
    public void OneOutOfMemoryErrorIsRetriedWithActivationsOffloadedAndChangesNoTensor(int layer, string phase, int occurrence)
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        using var result = LayerwiseQuantizer.Run(model, LayerCheckpointTests.MrGptq(), LayerCheckpointTests.Calibration(),
            OnceAt(layer, phase, occurrence));

        LayerCheckpointTests.AssertBitIdentical(Uninterrupted.Value, LayerCheckpointTests.Snapshot(model, result));
        string warning = Assert.Single(result.Warnings, w => w.Contains("ran out of memory"));
        Assert.Contains($"decoder layer {layer}", warning);
        Assert.Contains("--cpu-offload-activations", warning);
        Assert.Equal(28, result.Reports.Count(r => r.Name.StartsWith("model.layers.", StringComparison.Ordinal)));
    }

    [Fact]
    public void ASecondOutOfMemoryErrorStopsTheRunNamingTheFlags()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        int faults = 0;
        var e = Assert.Throws<QuantSharpException>(() => LayerwiseQuantizer.Run(model, LayerCheckpointTests.MrGptq(),
            LayerCheckpointTests.Calibration(), (l, p) =>
            {
                if (p == "solve" && faults++ < 2) throw SimulatedOom();
            }));
        Assert.Contains("decoder layer 0", e.Message);
        Assert.Contains("again after moving the calibration activations to CPU memory", e.Message);
        Assert.Contains("--cpu-offload-modules", e.Message);
        Assert.Contains("--calib-batch-size", e.Message);
        Assert.DoesNotContain("--cpu-offload-activations", e.Message);
    }

    [Fact]
    public void WithActivationsAlreadyOffloadedTheFirstErrorIsFinal()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var config = LayerCheckpointTests.MrGptq() with { CpuOffloadActivations = true };
        var e = Assert.Throws<QuantSharpException>(() =>
            LayerwiseQuantizer.Run(model, config, LayerCheckpointTests.Calibration(), OnceAt(0, "calibrate")));
        Assert.Contains("ran out of memory (CUDA out of memory", e.Message);
        Assert.Contains("--cpu-offload-modules", e.Message);
    }

    [Fact]
    public void OtherErrorsAreNotRetried()
    {
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var e = Assert.Throws<InvalidOperationException>(() => LayerwiseQuantizer.Run(model, LayerCheckpointTests.MrGptq(),
            LayerCheckpointTests.Calibration(), (l, p) => throw new InvalidOperationException("not memory")));
        Assert.Equal("not memory", e.Message);
    }
}
