using QuantSharp.Formats;
using QuantSharp.Models;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>
/// FP-Quant's quantize-on-load (transformers' <c>FPQuantConfig(forward_dtype=…)</c>): a float checkpoint is turned
/// into a W4A4 MXFP4 or NVFP4 model as it is loaded, with round-to-nearest weights, a Hadamard rotation of every
/// linear's input and activations quantized on the fly; no calibration, no export. It is the layer-wise RTN pipeline
/// of <c>quantsharp quantize --method rtn</c> with the same settings, so the two give the same model. NVFP4
/// activations, which <c>quantize</c> calibrates a global scale for, take it from each call's input here instead.
/// </summary>
public static class QuantizeOnLoad
{
    /// <summary>FP-Quant's default Hadamard group size.</summary>
    public const int DefaultHadamardGroupSize = 32;

    /// <summary>The pipeline configuration of <c>--quantize-on-load</c> mxfp4|nvfp4.</summary>
    public static QuantizationConfig Config(string forwardDtype, int hadamardGroupSize = DefaultHadamardGroupSize)
    {
        QuantSpec spec = forwardDtype.ToLowerInvariant() switch
        {
            "mxfp4" => QuantSpec.MxFp4(),
            "nvfp4" => QuantSpec.NvFp4(),
            _ => throw new QuantSharpException($"--quantize-on-load {forwardDtype}: expected mxfp4 or nvfp4."),
        };
        if (hadamardGroupSize <= 0)
            throw new QuantSharpException($"--hadamard-group-size {hadamardGroupSize}: must be positive.");
        return new QuantizationConfig
        {
            Method = QuantMethod.Rtn,
            Weights = spec,
            Activations = spec,
            Transform = TransformKind.Hadamard,
            TransformGroupSize = hadamardGroupSize,
            DynamicActivationGlobalScale = true,
        };
    }

    /// <summary>Loads a float model folder and quantizes it layer by layer; the returned model carries its online hooks.</summary>
    public static LoadedModel Load(string dir, ScalarType dtype, Device device, string forwardDtype, int hadamardGroupSize = DefaultHadamardGroupSize)
    {
        var config = Config(forwardDtype, hadamardGroupSize);
        using (var packed = Models.Packed.PackedCheckpoint.TryOpen(dir))
            if (packed is not null)
                throw new QuantSharpException($"--quantize-on-load: {dir} is already quantized (quant_method {packed.Config["quant_method"]}); it needs a float checkpoint.");
        var model = CausalLM.Load(dir, dtype, device);
        try
        {
            var result = LayerwiseQuantizer.Run(model, config, calibration: null);
            // The model keeps the online state (rotations, activation quantizers); the weight parameters are only
            // needed for export.
            foreach (var state in result.Layers)
            {
                foreach (var p in state.WeightParams.Values) p.Dispose();
                state.WeightParams.Clear();
            }
            return new LoadedModel(model, result.Layers);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
