namespace QuantSharp.Tests.Cli;

public class FlatQuantCliTests
{
    [Fact]
    public void KvBitsWithoutWeightOrActivationBitsExitWith2()
    {
        var r = CliRunner.Run("quantize", "--model", Fixtures.MicroQwen3, "--method", "flatquant", "--w-bits", "16", "--a-bits", "16",
            "--k-bits", "4", "--v-bits", "4");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--k-bits/--v-bits", r.StdErr);

        var rtn = CliRunner.Run("quantize", "--model", Fixtures.MicroQwen3, "--w-bits", "16", "--a-bits", "16", "--k-bits", "4");
        Assert.Equal(2, rtn.ExitCode);
        Assert.Contains("--k-bits/--v-bits", rtn.StdErr);
    }

    [Fact]
    public void AnotherExportFormatIsRefusedBeforeCalibrating()
    {
        var r = CliRunner.Run("quantize", "--model", Fixtures.MicroQwen3, "--method", "flatquant", "--save", Path.GetTempPath(),
            "--export", "gptq");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--export flatquant-int4", r.StdErr);
    }
}
