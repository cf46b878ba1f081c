using QuantSharp.Eval;
using QuantSharp.Models;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using static TorchSharp.torch;

namespace QuantSharp.Tests.Fp8;

/// <summary>--quantize-on-load is the RTN pipeline of `quantize --method rtn` applied while loading.</summary>
public class QuantizeOnLoadTests
{
    private static double Ppl(CausalLM m) => PerplexityEvaluator.Evaluate(m, Golden.EvalTokens(), 256, maxWindows: 2, batchSize: 4).Perplexity;

    [Fact]
    public void Mxfp4OnLoadGivesTheSamePerplexityAsQuantizeRtn()
    {
        using var onLoad = QuantizeOnLoad.Load(Fixtures.MicroQwen3, float32, CPU, "mxfp4", hadamardGroupSize: 64);
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        // What `quantize --method rtn --format mxfp --w-bits 4 --a-bits 4 --transform hadamard --transform-group-size 64` runs.
        var rtn = new QuantizationConfig
        {
            Method = QuantMethod.Rtn, Weights = QuantSpec.MxFp4(), Activations = QuantSpec.MxFp4(),
            Transform = QuantSharp.Transforms.TransformKind.Hadamard, TransformGroupSize = 64,
        };
        using var result = LayerwiseQuantizer.Run(model, rtn, calibration: null);
        Assert.Equal(Ppl(model), Ppl(onLoad.Model), 6);
    }

    [Fact]
    public void Nvfp4OnLoadQuantizesWeightsAsRtnAndActivationsWithoutCalibration()
    {
        using var onLoad = QuantizeOnLoad.Load(Fixtures.MicroQwen3, float32, CPU, "nvfp4");
        using var model = CausalLM.Load(Fixtures.MicroQwen3, float32, CPU);
        var weightsOnly = QuantizeOnLoad.Config("nvfp4") with { Activations = null };
        using var result = LayerwiseQuantizer.Run(model, weightsOnly, calibration: null);
        var expected = model.Layers[2].Linears().ToDictionary(l => l.Name, l => l.Linear.Weight);
        foreach (var (name, linear) in onLoad.Model.Layers[2].Linears())
            Assert.True(linear.Weight.eq(expected[name]).all().item<bool>(), name);
        Assert.True(onLoad.Online[0].ActivationQuantizers["down"].Quantizer.DynamicGlobalScale);
        // Only the activations' global scale differs from the weight-only model: the perplexity rises, a little.
        double weightOnly = Ppl(model);
        Assert.InRange(Ppl(onLoad.Model), weightOnly, weightOnly * 1.1);
    }

    [Fact]
    public void BadForwardDtypeAndPackedModelsAreRefused()
    {
        Assert.Contains("--quantize-on-load fp8: expected mxfp4 or nvfp4",
            Assert.Throws<QuantSharpException>(() => QuantizeOnLoad.Config("fp8")).Message);
        var r = CliRunner.Run(["eval", "--model", Fixtures.MicroQwen3, "--data", Fixtures.EvalText, "--hadamard-group-size", "16"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--hadamard-group-size applies to --quantize-on-load", r.StdErr);
    }
}
