using System.Diagnostics;

namespace QuantSharp.Tests.Support;

public sealed record CliResult(int ExitCode, string StdOut, string StdErr);

/// <summary>Runs the real CLI (QuantSharp.Cli.dll beside the tests) in a child process, as a user would.</summary>
public static class CliRunner
{
    public static CliResult Run(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "QuantSharp.Cli.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Fixtures.RepoRoot,
        };
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("quantsharp " + string.Join(' ', args) + " did not finish in 10 minutes");
        }
        return new CliResult(p.ExitCode, stdout.Result, stderr.Result);
    }
}
