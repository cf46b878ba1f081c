using System.CommandLine;
using QuantSharp.IO;
using QuantSharp.Models;

namespace QuantSharp.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var cmd = new Command("inspect", "Architecture, parameter count, dtypes and shards of a model folder (reads headers only).") { model };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string dir = CliCommon.RequireModelDir(r.GetValue(model)!);
            var c = ModelConfig.Load(dir);
            using var ckpt = SafetensorsCheckpoint.Open(dir);
            long parameters = 0;
            var dtypes = new SortedDictionary<string, long>();
            foreach (string name in ckpt.Names)
            {
                var info = ckpt.GetInfo(name);
                long n = info.Shape.Aggregate(1L, (a, b) => a * b);
                parameters += n;
                dtypes[info.DType.ToString()] = dtypes.GetValueOrDefault(info.DType.ToString()) + n;
            }
            Console.WriteLine($"model        {Path.GetFullPath(dir)}");
            Console.WriteLine($"architecture {c.ModelType} ({c.Family})");
            Console.WriteLine($"layers       {c.NumLayers}  hidden {c.HiddenSize}  ffn {c.IntermediateSize}  heads {c.NumHeads}/{c.NumKvHeads} kv  head_dim {c.HeadDim}");
            Console.WriteLine($"vocab        {c.VocabSize}  tied embeddings {(c.TieWordEmbeddings ? "yes" : "no")}  rope {c.Rope.Type} theta {c.Rope.Theta}");
            Console.WriteLine($"norms        rms eps {c.RmsNormEps}{(c.QkNorm ? "  q/k-norm" : "")}{(c.QkvBias ? "  qkv bias" : "")}");
            Console.WriteLine($"parameters   {parameters:N0} ({parameters / 1e6:F1} M) in {ckpt.Names.Count} tensors");
            Console.WriteLine($"dtypes       {string.Join(", ", dtypes.Select(kv => $"{kv.Key}: {kv.Value:N0}"))}");
            Console.WriteLine($"shards       {ckpt.ShardFiles.Count} ({ckpt.TotalBytes / 1048576.0:F1} MiB)");
            foreach (string s in ckpt.ShardFiles) Console.WriteLine($"  {Path.GetFileName(s)}  {new FileInfo(s).Length / 1048576.0:F1} MiB");
            return 0;
        }));
        return cmd;
    }
}
