using System.Text;
using System.Text.Json;
using QuantSharp.IO.Tokenization;

namespace QuantSharp.Calibration;

/// <summary>
/// Calibration windows: the calibration text (plain text, or JSONL with a "text" field per line) tokenized once as a
/// whole and cut into <c>count</c> random windows of <c>seqLen</c> tokens. Window starts come from a seeded
/// <see cref="Random"/>, so a seed fixes the data exactly.
/// </summary>
public static class CalibrationData
{
    public static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"--calib {path}: file not found.");
        bool jsonl = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        if (!jsonl) return File.ReadAllText(path);
        var sb = new StringBuilder();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (!doc.RootElement.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                    throw new InvalidFileException(path, $"line {lineNo}: no string field \"text\"");
                if (sb.Length > 0) sb.Append("\n\n");
                sb.Append(text.GetString());
            }
            catch (JsonException e)
            {
                throw new InvalidFileException(path, $"line {lineNo}: invalid JSON ({e.Message})", inner: e);
            }
        }
        return sb.ToString();
    }

    /// <summary>Tokenizes the file and draws the windows.</summary>
    public static int[][] Load(string path, BpeTokenizer tokenizer, int count, int seqLen, int seed)
    {
        int[] ids = tokenizer.Encode(ReadText(path));
        return Windows(ids, count, seqLen, seed, path);
    }

    public static int[][] Windows(int[] ids, int count, int seqLen, int seed, string source = "calibration data")
    {
        if (count < 1) throw new QuantSharpException($"--num-sequences {count}: must be at least 1.");
        if (seqLen < 2) throw new QuantSharpException($"--seq-len {seqLen}: must be at least 2.");
        if (ids.Length < seqLen + 1)
            throw new QuantSharpException(
                $"{source}: {ids.Length} tokens is shorter than one calibration window of --seq-len {seqLen}; use a longer file or a smaller --seq-len.");
        var rng = new PythonRandom(seed);
        var windows = new int[count][];
        for (int i = 0; i < count; i++)
        {
            int start = rng.RandInt(0, ids.Length - seqLen - 1);
            windows[i] = ids.AsSpan(start, seqLen).ToArray();
        }
        return windows;
    }
}
