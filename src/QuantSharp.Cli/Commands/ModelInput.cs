using QuantSharp.IO.Gguf;
using QuantSharp.IO.Tokenization;
using QuantSharp.Quantization;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// The --model of eval/generate: a Hugging Face folder, or a .gguf file (QuantSharp dequantizes it and takes the
/// tokenizer from its tokenizer.huggingface.json), so a written GGUF can be scored by the same code.
/// </summary>
internal static class ModelInput
{
    public static string Require(string path)
    {
        if (Directory.Exists(path) || GgufModelLoader.IsGguf(path)) return path;
        if (File.Exists(path)) throw new QuantSharpException($"--model {path}: a file, but not a GGUF file (bad magic).");
        return CliCommon.RequireModelDir(path); // a Hub id org/name[@revision], or "folder not found"
    }

    public static BpeTokenizer Tokenizer(string path) =>
        Directory.Exists(path) ? BpeTokenizer.FromDirectory(path) : GgufModelLoader.LoadTokenizer(path);

    public static LoadedModel Load(string path, torch.ScalarType dtype, torch.Device device) =>
        Directory.Exists(path) ? OnlineQuantization.Load(path, dtype, device) : new LoadedModel(GgufModelLoader.Load(path, dtype, device), []);
}
