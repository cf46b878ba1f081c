using System.CommandLine;
using QuantSharp.Cli.Commands;

var root = new RootCommand("QuantSharp: post-training quantization of LLMs (FP-Quant/MR-GPTQ, FlatQuant, weight-only).")
{
    QuantizeCommand.Create(),
    ExportCommand.Create(),
    EvalCommand.Create(),
    CompareCommand.Create(),
    GenerateCommand.Create(),
    InspectCommand.Create(),
    SynthCommand.Create(),
    BenchCommand.Create(),
    ExportGgufCommand.Create(),
    ExportOnnxCommand.Create(),
};
return root.Parse(args).Invoke();
