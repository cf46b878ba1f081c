using System.CommandLine;
using System.Diagnostics;
using QuantSharp.Export.Onnx;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// <c>quantsharp export-onnx</c>: writes a model folder as one ONNX file for ONNX Runtime, the decoder linears as
/// com.microsoft.MatMulNBits (4- or 8-bit INT, block-wise along the input dimension) or float with --float.
/// </summary>
internal static class ExportOnnxCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var bits = new Option<int>("--bits") { Description = "4 | 8: MatMulNBits code width", DefaultValueFactory = _ => 4 };
        var blockSize = new Option<int>("--block-size")
        {
            Description = "input columns per scale (power of two ≥ 16 dividing every linear's input width)",
            DefaultValueFactory = _ => 128,
        };
        var asym = new Option<bool>("--asym") { Description = "asymmetric (per-block zero points); default symmetric" };
        var asFloat = new Option<bool>("--float") { Description = "keep the decoder linears float32 (plain MatMul)" };
        var output = new Option<string>("--out") { Description = "the .onnx file to write (over 2 GiB: plus FILE.onnx.data, ONNX external data)", Required = true };
        var json = new Option<string?>("--json") { Description = "write {file, format, bytes, bits_per_weight} here" };

        var cmd = new Command("export-onnx", "Write a model as an ONNX file ONNX Runtime runs (MatMulNBits INT4/INT8 linears, or float).")
        {
            model, bits, blockSize, asym, asFloat, output, json,
        };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var watch = Stopwatch.StartNew();
            var options = new OnnxExportOptions(r.GetValue(bits), r.GetValue(blockSize), !r.GetValue(asym), r.GetValue(asFloat));
            options.Validate();
            string dir = CliCommon.RequireModelDir(r.GetValue(model)!);
            if (!File.Exists(Path.Combine(dir, "config.json"))) throw new QuantSharpException($"--model {dir}: no config.json in the folder.");
            string outPath = r.GetValue(output)!;
            string? outDir = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (outDir is not null && !Directory.Exists(outDir)) throw new QuantSharpException($"--out {outPath}: folder {outDir} does not exist.");

            var report = OnnxExporter.Export(dir, outPath, options);
            Console.WriteLine($"wrote {outPath}: {report.Format}, {report.FileBytes:N0} bytes, {report.Nodes} nodes, " +
                              $"{report.LinearBitsPerWeight:F3} bits/weight in the decoder linears, {report.FileBitsPerWeight:F3} over all parameters " +
                              $"({watch.Elapsed.TotalSeconds:F1} s)" +
                              (report.ExternalDataPath is { } data ? $"; weights in {data} (external data, keep it beside the model)" : ""));
            if (r.GetValue(json) is { } jsonPath)
            {
                JsonOutput.Write(jsonPath, new
                {
                    file = Path.GetFullPath(outPath),
                    model = Path.GetFullPath(dir),
                    format = report.Format,
                    bytes = report.FileBytes,
                    external_data = report.ExternalDataPath,
                    parameters = report.Parameters,
                    quantized_weights = report.QuantizedWeights,
                    linear_bits_per_weight = report.LinearBitsPerWeight,
                    file_bits_per_weight = report.FileBitsPerWeight,
                    seconds = watch.Elapsed.TotalSeconds,
                });
            }
            return 0;
        }));
        return cmd;
    }
}
