using System.CommandLine;
using QuantSharp.Backend;
using QuantSharp.Calibration;
using QuantSharp.Export;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using QuantSharp.Models.Packed;
using QuantSharp.Quantization;
using QuantSharp.Quantizers;
using QuantSharp.Transforms;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// <c>quantsharp export</c>: writes a model in a packed checkpoint layout. From a QuantSharp pseudoquant folder the
/// codes are re-derived exactly from its weights and recorded parameters; from an unquantized model a round-to-nearest
/// recipe matching the format is run first (INT weight-only for gptq/awq/compressed-tensors, NVFP4/MXFP4 W4A4 with a
/// Hadamard rotation for fp-quant, NVFP4 W4A16 for compressed-tensors-nvfp4).
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var to = new Option<string>("--to") { Description = PackedExporter.Known, Required = true };
        var output = new Option<string>("--out") { Description = "folder to write", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing --out folder" };
        var format = new Option<string?>("--format") { Description = "unquantized source only: nvfp | mxfp for fp-quant (default nvfp)" };
        var wBits = new Option<int>("--w-bits") { Description = "unquantized source only: INT weight bits", DefaultValueFactory = _ => 4 };
        var wGroup = new Option<int>("--w-group-size") { Description = "unquantized source only: INT group size (-1 per channel)", DefaultValueFactory = _ => 128 };
        var asym = new Option<bool>("--asym") { Description = "unquantized source only: asymmetric INT (zero points)" };
        var aBits = new Option<int?>("--a-bits") { Description = "unquantized source only: 4 for W4A4 compressed-tensors-nvfp4" };
        var tGroup = new Option<int?>("--transform-group-size") { Description = "unquantized source only: fp-quant Hadamard block (default: the format's group)" };
        var calib = new Option<string?>("--calib") { Description = "unquantized source only: calibration text for NVFP4 activation scales" };
        var numSeq = new Option<int>("--num-sequences") { DefaultValueFactory = _ => 32 };
        var seqLen = new Option<int>("--seq-len") { DefaultValueFactory = _ => 512 };
        var dtype = CliCommon.DTypeOption();
        var device = CliCommon.DeviceOption();
        var cmd = new Command("export", "Write a pseudoquant folder (or an unquantized model, after RTN) as a packed checkpoint: fp-quant, gptq, awq, compressed-tensors.")
        {
            model, to, output, overwrite, format, wBits, wGroup, asym, aBits, tGroup, calib, numSeq, seqLen, dtype, device,
        };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string dir = CliCommon.RequireModelDir(r.GetValue(model)!);
            var target = PackedExporter.Parse(r.GetValue(to)!, "--to");
            string outDir = r.GetValue(output)!;
            if (Path.GetFullPath(outDir).TrimEnd('/') == Path.GetFullPath(dir).TrimEnd('/'))
                throw new QuantSharpException($"--out {outDir}: is the --model folder; write to another folder.");
            var dev = TorchRuntime.ResolveDevice(r.GetValue(device));
            var dt = CliCommon.ParseDType(r.GetValue(dtype)!);
            using var noGrad = torch.no_grad();
            IReadOnlyList<string> warnings;
            if (PseudoQuantSource.IsPseudoQuant(dir))
            {
                using var source = PseudoQuantSource.Load(dir, dt, dev);
                warnings = PackedExporter.Write(source.Result, target, outDir, r.GetValue(overwrite));
            }
            else
            {
                if (PackedCheckpoint.Methods.Contains(ModelConfig.Load(dir).Raw["quantization_config"]?["quant_method"]?.GetValue<string>()))
                    throw new QuantSharpException($"--model {dir}: is already a packed checkpoint; export from the pseudoquant folder or the unquantized model.");
                var config = RecipeFor(target, r.GetValue(format), r.GetValue(wBits), r.GetValue(wGroup), r.GetValue(asym), r.GetValue(aBits), r.GetValue(tGroup),
                    r.GetValue(numSeq), r.GetValue(seqLen));
                PackedExporter.CheckCompatible(config, ModelConfig.Load(dir), target);
                int[][]? calibration = null;
                if (config.NeedsCalibration)
                {
                    var tokenizer = BpeTokenizer.FromDirectory(dir);
                    calibration = CalibrationData.Load(r.GetValue(calib) ?? EmbeddedDefaults.CalibText(), tokenizer, config.NumSequences, config.SeqLen, config.Seed);
                }
                using var lm = CausalLM.Load(dir, dt, dev);
                using var result = LayerwiseQuantizer.Run(lm, config, calibration);
                warnings = PackedExporter.Write(result, target, outDir, r.GetValue(overwrite));
            }
            foreach (var w in warnings) Console.Error.WriteLine("warning: " + w);
            Console.WriteLine($"wrote {r.GetValue(to)} checkpoint to {outDir}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The round-to-nearest recipe an unquantized model is exported with, per target format.</summary>
    private static QuantizationConfig RecipeFor(ExportFormat target, string? format, int wBits, int wGroup, bool asym, int? aBits, int? tGroup, int numSeq, int seqLen)
    {
        switch (target)
        {
            case ExportFormat.FpQuant or ExportFormat.FpQuantPseudoQuant:
            {
                var spec = (format ?? "nvfp").ToLowerInvariant() switch
                {
                    "nvfp" or "nvfp4" => QuantSpec.NvFp4(),
                    "mxfp" or "mxfp4" => QuantSpec.MxFp4(),
                    var x => throw new QuantSharpException($"--format {x}: fp-quant holds nvfp or mxfp."),
                };
                return new QuantizationConfig
                {
                    Weights = spec, Activations = spec, Transform = TransformKind.Hadamard,
                    TransformGroupSize = tGroup ?? spec.GroupSize, NumSequences = numSeq, SeqLen = seqLen,
                };
            }
            case ExportFormat.CompressedTensorsNvFp4:
                return new QuantizationConfig
                {
                    Weights = QuantSpec.NvFp4(), Activations = aBits == 4 ? QuantSpec.NvFp4() : null, FuseGlobalScale = true,
                    NumSequences = numSeq, SeqLen = seqLen,
                };
            case ExportFormat.PseudoQuant:
                throw new QuantSharpException("--to pseudoquant: use quantsharp quantize --save DIR --export pseudoquant for an unquantized model.");
            default:
                return new QuantizationConfig { Weights = QuantSpec.Int(wBits, wGroup, !asym) };
        }
    }
}
