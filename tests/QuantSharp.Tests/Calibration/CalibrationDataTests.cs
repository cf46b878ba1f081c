using QuantSharp.Calibration;

namespace QuantSharp.Tests.Calibration;

public class CalibrationDataTests
{
    [Fact]
    public void PythonRandomMatchesCPython()
    {
        // python3: r = random.Random(42); [r.getrandbits(32) for _ in range(3)]
        var r = new PythonRandom(42);
        Assert.Equal(2746317213u, r.GetRandBits(32));
        Assert.Equal(478163327u, r.GetRandBits(32));
        Assert.Equal(107420369u, r.GetRandBits(32));
        // python3: r = random.Random(42); [r.randint(0, 1000000) for _ in range(5)]
        var q = new PythonRandom(42);
        Assert.Equal(new[] { 670487, 116739, 26225, 777572, 288389 }, Enumerable.Range(0, 5).Select(_ => q.RandInt(0, 1000000)));
    }

    [Fact]
    public void WindowsAreDeterministicAndInRange()
    {
        int[] ids = Enumerable.Range(0, 5000).ToArray();
        var a = CalibrationData.Windows(ids, 16, 128, 42);
        var b = CalibrationData.Windows(ids, 16, 128, 42);
        var c = CalibrationData.Windows(ids, 16, 128, 7);
        Assert.Equal(a, b);
        Assert.NotEqual(a[0][0], c[0][0]);
        foreach (var w in a)
        {
            Assert.Equal(128, w.Length);
            Assert.Equal(w[0] + 127, w[^1]); // contiguous slice of the stream
        }
    }

    [Fact]
    public void TooShortCalibrationTextIsAClearError()
    {
        var e = Assert.Throws<QuantSharpException>(() => CalibrationData.Windows(new int[100], 4, 512, 42, "calib.txt"));
        Assert.Contains("calib.txt", e.Message);
        Assert.Contains("--seq-len 512", e.Message);
    }

    [Fact]
    public void JsonlTextFieldsAreJoined()
    {
        using var dir = Fixtures.NewTempDir();
        string path = dir.File("c.jsonl");
        File.WriteAllLines(path, ["{\"text\": \"first doc\"}", "", "{\"text\": \"second\", \"meta\": 1}"]);
        Assert.Equal("first doc\n\nsecond", CalibrationData.ReadText(path));
        File.WriteAllLines(path, ["{\"body\": \"x\"}"]);
        var e = Assert.Throws<InvalidFileException>(() => CalibrationData.ReadText(path));
        Assert.Contains("line 1", e.Message);
    }
}
