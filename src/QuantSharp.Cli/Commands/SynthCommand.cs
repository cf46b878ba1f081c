using System.CommandLine;
using QuantSharp.Models;

namespace QuantSharp.Cli.Commands;

internal static class SynthCommand
{
    public static Command Create()
    {
        var like = new Option<string>("--like") { Description = "llama-3.2-1b | llama-3.1-8b | llama-3.1-70b | qwen3-8b", Required = true };
        var layers = new Option<int?>("--layers") { Description = "number of decoder layers (default: the real model's)" };
        var vocab = new Option<int?>("--vocab") { Description = "vocabulary size (default: the real model's)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder whose tokenizer.json to copy in" };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var shard = new Option<long>("--max-shard-mb") { DefaultValueFactory = _ => 2048 };
        var output = new Option<string>("--out") { Description = "output folder (written to a temporary sibling, renamed when complete)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing non-empty --out folder" };
        var cmd = new Command("synth", "Write a random-weight checkpoint with a real model's layer shapes (for benchmarks).")
        {
            like, layers, vocab, tokenizer, seed, shard, output, overwrite,
        };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var shape = ModelShape.Get(r.GetValue(like)!);
            string outDir = r.GetValue(output)!;
            SyntheticModel.Write(shape, outDir, r.GetValue(layers), r.GetValue(vocab), r.GetValue(tokenizer), r.GetValue(seed),
                r.GetValue(shard) << 20, r.GetValue(overwrite));
            Console.WriteLine($"wrote {shape.Name}-shaped random model to {outDir}");
            return 0;
        }));
        return cmd;
    }
}
