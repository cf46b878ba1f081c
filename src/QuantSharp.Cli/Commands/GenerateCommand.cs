using System.CommandLine;
using QuantSharp.Backend;
using QuantSharp.IO.Tokenization;
using QuantSharp.Models;
using QuantSharp.Quantization;

namespace QuantSharp.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var prompt = new Option<string>("--prompt") { Description = "prompt text", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 32 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var noBos = new Option<bool>("--no-bos") { Description = "do not prepend the BOS token" };
        var dtype = CliCommon.DTypeOption();
        var device = CliCommon.DeviceOption();
        var json = new Option<string?>("--json") { Description = "write {prompt_ids, generated_ids, text} here (token-level comparisons)" };
        var cmd = new Command("generate", "Continue a prompt (greedy, or temperature / top-p sampling).")
        {
            model, prompt, maxNew, temperature, topP, seed, noBos, dtype, device, json,
        };
        var fp8Load = new Fp8LoadOptions();
        fp8Load.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string dir = ModelInput.Require(r.GetValue(model)!);
            var dev = TorchRuntime.ResolveDevice(r.GetValue(device));
            var tokenizer = ModelInput.Tokenizer(dir);
            using var loaded = fp8Load.Load(r, dir, CliCommon.ParseDType(r.GetValue(dtype)!), dev, quiet: true);
            var lm = loaded.Model;
            string text = r.GetValue(prompt)!;
            int[] ids = tokenizer.Encode(text, addSpecialTokens: !r.GetValue(noBos));
            var stops = new HashSet<int>(lm.Config.EosTokenIds);
            if (tokenizer.EosTokenId is { } eos) stops.Add(eos);
            var opts = new GenerationOptions(r.GetValue(maxNew), r.GetValue(temperature), r.GetValue(topP), r.GetValue(seed), stops);
            Console.Write(text);
            var produced = new List<int>();
            string shown = "";
            TextGenerator.Generate(lm, ids, opts, t =>
            {
                // Decode the whole continuation each step so multi-byte characters split across tokens print whole.
                produced.Add(t);
                string all = tokenizer.Decode(produced, skipSpecialTokens: true);
                if (all.Length > shown.Length && !all.EndsWith('\uFFFD'))
                {
                    Console.Write(all[shown.Length..]);
                    shown = all;
                }
            });
            Console.WriteLine();
            if (r.GetValue(json) is { } jsonPath)
                JsonOutput.Write(jsonPath, new { prompt_ids = ids, generated_ids = produced, text = tokenizer.Decode(produced, skipSpecialTokens: true) });
            return 0;
        }));
        return cmd;
    }
}
