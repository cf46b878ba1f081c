using QuantSharp.Quantization;

namespace QuantSharp.Tests.Quantization;

/// <summary>/proc lines as the kernel writes them: the padding after the tab vanishes for 8-digit values (a GPU run crashed on it).</summary>
public class ProcStatusParsingTests
{
    [Theory]
    [InlineData("VmHWM:\t  855007 kB", 855007L * 1024)]
    [InlineData("VmHWM:\t27119232 kB", 27119232L * 1024)]
    [InlineData("MemAvailable:   23456789 kB", 23456789L * 1024)]
    [InlineData("MemAvailable:123456789012 kB", 123456789012L * 1024)]
    public void ReadsKilobyteValues(string line, long bytes) => Assert.Equal(bytes, MemoryEstimate.ProcKilobytes(line));

    [Theory]
    [InlineData("VmHWM:")]
    [InlineData("no colon here")]
    [InlineData("VmHWM:\tkB")]
    public void MalformedLinesGiveNull(string line) => Assert.Null(MemoryEstimate.ProcKilobytes(line));
}
