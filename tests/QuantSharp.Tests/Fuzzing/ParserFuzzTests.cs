using QuantSharp.Fuzzing;

namespace QuantSharp.Tests.Fuzzing;

/// <summary>
/// The CI share of the parser fuzzing (the long run is `quantsharp bench fuzz`, bench/results/fuzz.md): a fixed seed
/// and a bounded number of cases per parser; any finding fails with the case number, so it reproduces.
/// </summary>
public class ParserFuzzTests
{
    [Theory]
    [InlineData(FuzzTarget.Safetensors, 150)]
    [InlineData(FuzzTarget.Gguf, 150)]
    [InlineData(FuzzTarget.TokenizerJson, 100)]
    [InlineData(FuzzTarget.ConfigJson, 200)]
    public void MutatedFilesAreParsedOrRejectedWithOurException(FuzzTarget target, int cases)
    {
        using var tmp = Fixtures.NewTempDir();
        var fuzzer = new ParserFuzzer(tmp.Path, Fixtures.MicroQwen3);
        var report = fuzzer.Run(target, cases, seed: 20261129);
        Assert.True(report.Findings.Count == 0,
            string.Join("\n", report.Findings.Select(f => $"{f.Target} case {f.Case}: {f.Kind}: {f.Detail}")));
        Assert.Equal(cases, report.Accepted + report.Rejected);
        Assert.True(report.Rejected > 0, "no mutant was rejected: the mutator is not reaching the parser's checks");
    }

    [Fact]
    public void MutationsAreReproducibleFromTheSeed()
    {
        byte[] input = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray();
        Assert.Equal(ByteMutator.Mutate(input, new Random(5)), ByteMutator.Mutate(input, new Random(5)));
        Assert.NotEqual(ByteMutator.Mutate(input, new Random(5)), ByteMutator.Mutate(input, new Random(6)));
    }
}
