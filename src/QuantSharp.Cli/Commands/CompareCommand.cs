using System.CommandLine;
using QuantSharp.Eval.Tasks;

namespace QuantSharp.Cli.Commands;

/// <summary>`quantsharp compare ORIGINAL.json QUANTIZED.json`: the Markdown recovery table of two task runs.</summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var original = new Argument<string>("original") { Description = "JSON of the original model's run (eval --tasks --json)" };
        var quantized = new Argument<string>("quantized") { Description = "JSON of the quantized model's run" };
        var labels = new Option<string?>("--labels") { Description = "column names A,B (default: the file names)" };
        var cmd = new Command("compare", "Markdown table of two task runs with recovery % (quantized / original; original / quantized for perplexity).")
        {
            original, quantized, labels,
        };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string? a = null, b = null;
            if (r.GetValue(labels) is { } l)
            {
                var parts = l.Split(',');
                if (parts.Length != 2) throw new QuantSharpException($"--labels {l}: expected two names, A,B.");
                (a, b) = (parts[0], parts[1]);
            }
            Console.Write(TaskReport.CompareTable(r.GetValue(original)!, r.GetValue(quantized)!, a, b));
            return 0;
        }));
        return cmd;
    }
}
