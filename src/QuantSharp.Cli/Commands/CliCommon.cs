using System.CommandLine;
using QuantSharp.Backend;
using QuantSharp.IO.Hub;
using Spectre.Console;
using TorchSharp;

namespace QuantSharp.Cli.Commands;

/// <summary>Options and plumbing shared by the commands.</summary>
internal static class CliCommon
{
    public static Option<string> DeviceOption() => new("--device")
    {
        Description = "auto | cpu | cuda | cuda:N (CUDA libtorch is taken from QUANTSHARP_LIBTORCH)",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<string> DTypeOption(string defaultValue = "fp32") => new("--dtype")
    {
        Description = "compute dtype: fp32 | bf16 | fp16",
        DefaultValueFactory = _ => defaultValue,
    };

    public static Option<string> ModelOption() => new("--model")
    {
        Description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json), or a Hub id org/name[@revision] "
            + "fetched into the Hugging Face cache (HF_HOME, HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE)",
        Required = true,
    };

    public static torch.ScalarType ParseDType(string s) => s.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => torch.float32,
        "bf16" or "bfloat16" => torch.bfloat16,
        "fp16" or "float16" or "half" => torch.float16,
        _ => throw new QuantSharpException($"--dtype {s}: expected fp32, bf16 or fp16."),
    };

    public static string RequireFile(string path, string flag)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{flag} {path}: file not found.");
        return path;
    }

    /// <summary>
    /// A model folder: the path itself when it exists (exactly as before), else a Hub id org/name[@revision] resolved
    /// to its snapshot in the Hugging Face cache, downloading what is missing.
    /// </summary>
    public static string RequireModelDir(string path)
    {
        if (Directory.Exists(path)) return path;
        if (!HubModelId.TryParse(path, out var id)) throw new QuantSharpException($"--model {path}: folder not found.");
        var options = HubOptions.FromEnvironment() with { Progress = DownloadReporter() };
        return HubSnapshot.Resolve(id, options);
    }

    /// <summary>Download progress on stderr (stdout stays the command's output): each file once, then every 10%.</summary>
    private static Action<HubProgress> DownloadReporter()
    {
        string lastFile = "";
        long lastTenth = -1;
        return p =>
        {
            long tenth = p.FileTotal > 0 ? p.FileDone * 10 / p.FileTotal : 10;
            if (p.File == lastFile && tenth == lastTenth) return;
            lastFile = p.File;
            lastTenth = tenth;
            Console.Error.WriteLine($"download {p.RepoId}: {p.File} {p.FileDone / 1048576.0:F1}/{p.FileTotal / 1048576.0:F1} MiB "
                + $"(all: {p.TotalDone / 1048576.0:F1}/{p.Total / 1048576.0:F1} MiB)");
        };
    }

    /// <summary>
    /// Runs a command body: user errors print one line to stderr and exit 2; anything else is a bug and exits 3
    /// with its message (and the stack trace only with QUANTSHARP_DEBUG=1).
    /// </summary>
    public static int Run(Func<int> body)
    {
        try
        {
            TorchRuntime.EnsureNativeLoaded();
            return body();
        }
        catch (QuantSharpException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error ({e.GetType().Name}): {e.Message}");
            if (Environment.GetEnvironmentVariable("QUANTSHARP_DEBUG") == "1") Console.Error.WriteLine(e);
            return 3;
        }
    }

    /// <summary>A progress bar on an interactive terminal; plain periodic lines otherwise (CI logs, pipes).</summary>
    public static T WithProgress<T>(string label, bool quiet, Func<Action<int, int>, T> work)
    {
        if (quiet) return work((_, _) => { });
        if (!Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            T result = default!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(label, maxValue: 1);
                    result = work((done, total) => { task.MaxValue = total; task.Value = done; });
                });
            return result;
        }
        int lastPercent = -1;
        return work((done, total) =>
        {
            int pct = total == 0 ? 100 : done * 100 / total;
            if (pct / 10 != lastPercent / 10 || done == total)
            {
                lastPercent = pct;
                Console.Error.WriteLine($"{label}: {done}/{total}");
            }
        });
    }
}
