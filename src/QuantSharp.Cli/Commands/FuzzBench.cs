using System.Globalization;
using QuantSharp.Fuzzing;

namespace QuantSharp.Cli.Commands;

/// <summary><c>quantsharp bench fuzz</c>: the long fuzzing run; prints a table and exits 1 when anything was found.</summary>
internal static class FuzzBench
{
    public static int Run(int cases, int seed, string modelDir, string? markdown, string? json)
    {
        if (cases < 1) throw new QuantSharpException($"--cases {cases}: must be at least 1.");
        string work = Path.Combine(Path.GetTempPath(), "quantsharp-fuzz-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var fuzzer = new ParserFuzzer(work, modelDir);
            var reports = new List<FuzzTargetReport>();
            foreach (var target in Enum.GetValues<FuzzTarget>())
            {
                var r = fuzzer.Run(target, cases, seed);
                reports.Add(r);
                Console.WriteLine($"{target}: {r.Cases} cases, {r.Accepted} parsed, {r.Rejected} rejected, {r.Findings.Count} findings, {r.Seconds:F1} s");
                foreach (var f in r.Findings) Console.WriteLine($"  case {f.Case}: {f.Kind}: {f.Detail}");
            }
            if (markdown is not null)
            {
                var lines = new List<string>
                {
                    "",
                    string.Create(CultureInfo.InvariantCulture, $"### {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, seed {seed}, {cases} cases per parser, {Environment.MachineName} ({Environment.ProcessorCount} cores)"),
                    "",
                    "| parser | cases | parsed | rejected (QuantSharpException) | findings | seconds |",
                    "|---|---|---|---|---|---|",
                };
                lines.AddRange(reports.Select(r => string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Target} | {r.Cases} | {r.Accepted} | {r.Rejected} | {r.Findings.Count} | {r.Seconds:F1} |")));
                lines.AddRange(reports.SelectMany(r => r.Findings).Select(f => $"- {f.Target} case {f.Case}: {f.Kind}: {f.Detail}"));
                File.AppendAllLines(markdown, lines);
            }
            if (json is not null) JsonOutput.Write(json, reports);
            return reports.Any(r => r.Findings.Count > 0) ? 1 : 0;
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }
}
