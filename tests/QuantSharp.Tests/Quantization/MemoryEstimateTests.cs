using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Quantization;

/// <summary>The estimate's parts follow the flags that change them, and a run that cannot fit is refused naming them.</summary>
public class MemoryEstimateTests
{
    private static readonly ModelConfig Micro = ModelConfig.Load(Fixtures.MicroQwen3);

    private static QuantizationConfig MrGptq(int sequences = 32) => new()
    {
        Method = QuantMethod.Gptq,
        Weights = QuantSpec.NvFp4(),
        Activations = QuantSpec.NvFp4(),
        Transform = TransformKind.Hadamard,
        TransformGroupSize = 16,
        NumSequences = sequences,
        SeqLen = 256,
        CalibBatchSize = 8,
    };

    private static MemoryEstimate Cpu(QuantizationConfig q, EvalShape? eval = null) => MemoryEstimate.For(Micro, float32, q, onGpu: false, 0, eval);

    [Fact]
    public void CalibrationActivationsScaleWithNumSequences()
    {
        var small = Cpu(MrGptq(32));
        var large = Cpu(MrGptq(64));
        // 32 more sequences of 256 tokens × hidden 256 × 4 bytes.
        Assert.Equal(32L * 256 * 256 * 4, large.Parts["activations"] - small.Parts["activations"]);
        Assert.Equal(large.Parts["activations"] - small.Parts["activations"], large.CpuBytes - small.CpuBytes);
    }

    [Fact]
    public void LayerWiseGptqHoldsOneLayerInsteadOfTheModel()
    {
        var q = new QuantizationConfig { Method = QuantMethod.Gptq, Weights = QuantSpec.Int(4, 128), NumSequences = 16, SeqLen = 128 };
        var inMemory = MemoryEstimate.For(Micro, bfloat16, q, onGpu: false, 100);
        var layerWise = MemoryEstimate.ForLayerWise(Micro, bfloat16, q, 100);
        // micro-qwen3, one layer in bf16: q 256×256, k/v 128×256 each, o 256×256, gate/up/down 768×256 each, two norms of 256.
        long layer = (256L * 256 + 2 * 128 * 256 + 256 * 256 + 3 * 768 * 256 + 2 * 256) * 2;
        Assert.Equal(layer, layerWise.Parts["model"]);
        Assert.Equal(8192L * 256 * 2, layerWise.Parts["embedding"]);
        var p = inMemory.Parts;
        // The layer phase (weights, activations, forward, Hessians, float32 folds, solve) outweighs the embedding lookup here.
        Assert.Equal(100 + layer + p["activations"] + p["layer_forward"] + p["hessians"] + p["folded_weights"] + p["solve"], layerWise.CpuBytes);
        Assert.Equal(inMemory.CpuBytes - p["model"] + layer, layerWise.CpuBytes);
    }

    [Fact]
    public void RtnWithoutActivationQuantizationHasNoCalibrationParts()
    {
        var rtn = Cpu(new QuantizationConfig { Weights = QuantSpec.Int(4, 128) });
        Assert.Equal(0, rtn.Parts["activations"]);
        Assert.Equal(0, rtn.Parts["layer_forward"]);
        Assert.Equal(0, rtn.Parts["hessians"]);
        Assert.True(rtn.Parts["solve"] > 0);
    }

    [Fact]
    public void TheEvaluationsLogitsFollowTheEvalBatchAndTheirPeakCountsWhenLargerThanQuantizing()
    {
        var q = new QuantizationConfig { Weights = QuantSpec.Int(4, 128) };
        var one = Cpu(q, new EvalShape(1, 512));
        var four = Cpu(q, new EvalShape(4, 512));
        // float32 logits and their log-softmax: 8 bytes per (window, position, vocabulary entry) beyond one layer's forward.
        Assert.True(four.Parts["eval"] - one.Parts["eval"] >= 3L * 511 * Micro.VocabSize * 8);
        Assert.Equal(four.Parts["eval"] - one.Parts["eval"], four.CpuBytes - one.CpuBytes);
        Assert.True(four.Parts["eval"] > four.Parts["solve"]);
    }

    [Fact]
    public void OffloadingFlagsMoveMemoryFromTheGpuToTheCpu()
    {
        var cuda = new Device(DeviceType.CUDA, 0);
        var onGpu = MemoryEstimate.For(Micro, bfloat16, MrGptq(), onGpu: true, 0);
        var offloaded = MemoryEstimate.For(Micro, bfloat16, MrGptq() with { CpuOffloadActivations = true }, onGpu: true, 0);
        var streamed = MemoryEstimate.For(Micro, bfloat16, MrGptq() with { ComputeDevice = cuda }, onGpu: true, 0);
        long activations = onGpu.Parts["activations"];
        Assert.True(activations > 0);
        Assert.True(offloaded.GpuBytes < onGpu.GpuBytes);
        Assert.Equal(onGpu.CpuBytes + activations, offloaded.CpuBytes);
        Assert.Equal(onGpu.CpuBytes + onGpu.Parts["model"], streamed.CpuBytes);
    }

    [Fact]
    public void ARunThatDoesNotFitIsRefusedNamingTheFlagsThatLowerIt()
    {
        var estimate = MemoryEstimate.For(Micro, bfloat16, MrGptq(), onGpu: true, 100L << 20, new EvalShape(4, 512));
        var gpu = Assert.Throws<QuantSharpException>(() => estimate.Check(null, 1L << 20, "cuda:0"));
        Assert.Contains("estimated peak GPU memory", gpu.Message);
        foreach (string flag in new[] { "--cpu-offload-modules", "--cpu-offload-activations", "--num-sequences", "--calib-batch-size" })
            Assert.Contains(flag, gpu.Message);
        var cpu = Assert.Throws<QuantSharpException>(() => Cpu(MrGptq(), new EvalShape(4, 512)).Check(1L << 20, null, "cpu"));
        Assert.Contains("estimated peak CPU memory", cpu.Message);
        Assert.Contains("--num-sequences", cpu.Message);
        Assert.Contains("--eval-batch-size", cpu.Message);
        Cpu(MrGptq()).Check(1L << 40, null, "cpu");
    }
}
