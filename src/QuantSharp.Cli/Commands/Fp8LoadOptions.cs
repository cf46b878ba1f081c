using System.CommandLine;
using QuantSharp.Calibration;
using QuantSharp.Quantization;
using QuantSharp.Quantization.W4A8;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// eval/generate flags that change the model as it loads: FP-Quant's quantize-on-load (--quantize-on-load mxfp4|nvfp4)
/// and INC's hybrid W4A8 (--w4a8, measuring input absmax with --measure CALIB or reusing the measure file).
/// </summary>
internal sealed class Fp8LoadOptions
{
    private readonly Option<string?> _onLoad = new("--quantize-on-load") { Description = "mxfp4 | nvfp4: RTN W4A4 with a Hadamard rotation while loading a float model (FP-Quant's FPQuantConfig)" };
    private readonly Option<int?> _hadamard = new("--hadamard-group-size") { Description = $"rotation block of --quantize-on-load (default {QuantizeOnLoad.DefaultHadamardGroupSize})" };
    private readonly Option<bool> _w4a8 = new("--w4a8") { Description = "run a 4-bit INT model (QuantSharp format) as W4A8: weights INT4→FP8, activations FP8 per tensor with pow2 scales (INC's HybridGPTQ)" };
    private readonly Option<string?> _measure = new("--measure") { Description = "--w4a8: measure each linear's input absmax on this calibration text first (else reuse the measure file)" };
    private readonly Option<string?> _measureFile = new("--measure-file") { Description = $"--w4a8 measurements (default: {ActivationMeasurement.DefaultFileName} in the model folder)" };
    private readonly Option<int> _measureSequences = new("--measure-num-sequences") { Description = "--measure: calibration windows (default 128)", DefaultValueFactory = _ => 128 };
    private readonly Option<int> _measureSeqLen = new("--measure-seq-len") { Description = "--measure: window length (default 512)", DefaultValueFactory = _ => 512 };

    public void AddTo(Command cmd)
    {
        foreach (Option o in new Option[] { _onLoad, _hadamard, _w4a8, _measure, _measureFile, _measureSequences, _measureSeqLen })
            cmd.Options.Add(o);
    }

    /// <summary>True when --quantize-on-load or --w4a8 was given.</summary>
    public bool AnySet(ParseResult r) => r.GetValue(_onLoad) is not null || r.GetValue(_w4a8);

    /// <summary>Loads the model, applying --quantize-on-load or --w4a8 when given.</summary>
    public LoadedModel Load(ParseResult r, string dir, torch.ScalarType dtype, torch.Device device, bool quiet)
    {
        string? onLoad = r.GetValue(_onLoad);
        bool w4a8 = r.GetValue(_w4a8);
        if (onLoad is not null && w4a8) throw new QuantSharpException("--quantize-on-load and --w4a8 exclude each other.");
        if (r.GetValue(_hadamard) is not null && onLoad is null) throw new QuantSharpException("--hadamard-group-size applies to --quantize-on-load.");
        if (!w4a8 && (r.GetValue(_measure) is not null || r.GetValue(_measureFile) is not null))
            throw new QuantSharpException("--measure/--measure-file apply to --w4a8.");
        if (onLoad is not null)
        {
            if (!Directory.Exists(dir)) throw new QuantSharpException($"--quantize-on-load: {dir} is not a model folder.");
            return QuantizeOnLoad.Load(dir, dtype, device, onLoad, r.GetValue(_hadamard) ?? QuantizeOnLoad.DefaultHadamardGroupSize);
        }
        var loaded = ModelInput.Load(dir, dtype, device);
        if (!w4a8) return loaded;
        try
        {
            var lm = loaded.Model;
            var variant = W4A8Conversion.RequireFourBitInt(dir, lm);
            string measurePath = r.GetValue(_measureFile) ?? Path.Combine(dir, ActivationMeasurement.DefaultFileName);
            ActivationMeasurement measurement;
            if (r.GetValue(_measure) is { } calib)
            {
                string calibPath = CliCommon.RequireFile(calib, "--measure");
                var windows = CalibrationData.Load(calibPath, ModelInput.Tokenizer(dir), r.GetValue(_measureSequences), r.GetValue(_measureSeqLen), 42);
                measurement = ActivationMeasurement.Measure(lm, windows, source: $"{Path.GetFullPath(calibPath)}, {windows.Length}×{r.GetValue(_measureSeqLen)}");
                measurement.Save(measurePath);
                if (!quiet) Console.WriteLine($"measured {measurement.Linears.Count} linear inputs on {windows.Length} windows → {measurePath}");
            }
            else measurement = ActivationMeasurement.Load(measurePath);
            var states = W4A8Conversion.Convert(lm, measurement, variant, measurePath);
            return new LoadedModel(lm, [.. loaded.Online, .. states]);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }
}
