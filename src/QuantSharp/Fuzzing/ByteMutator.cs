using System.Buffers.Binary;

namespace QuantSharp.Fuzzing;

/// <summary>
/// Seeded byte-level mutations of a valid file: bit flips, random and boundary bytes, boundary integers written over
/// length and offset fields, truncation, insertion, deletion and duplication of ranges. One to four per case, so
/// most mutants stay close enough to valid to get past the magic and into the parser's deeper checks.
/// </summary>
public static class ByteMutator
{
    private static readonly byte[] InterestingBytes = [0x00, 0x01, 0x7F, 0x80, 0xFF, (byte)'{', (byte)'}', (byte)'"', (byte)','];

    private static readonly ulong[] InterestingWords =
    [
        0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
        ulong.MaxValue, 1UL << 40, 1UL << 31, 4096,
    ];

    public static byte[] Mutate(byte[] input, Random rng)
    {
        var data = new List<byte>(input);
        int count = 1 + rng.Next(4);
        for (int m = 0; m < count; m++)
        {
            if (data.Count == 0) { data.Add((byte)rng.Next(256)); continue; }
            int at = rng.Next(data.Count);
            switch (rng.Next(8))
            {
                case 0: data[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: data[at] = (byte)rng.Next(256); break;
                case 2: data[at] = InterestingBytes[rng.Next(InterestingBytes.Length)]; break;
                case 3:
                {
                    // A boundary value over what may be a length, count or offset field (4 or 8 bytes, little-endian).
                    Span<byte> word = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(word, InterestingWords[rng.Next(InterestingWords.Length)]);
                    int width = rng.Next(2) == 0 ? 4 : 8;
                    for (int i = 0; i < width && at + i < data.Count; i++) data[at + i] = word[i];
                    break;
                }
                case 4: data.RemoveRange(at, data.Count - at); break;
                case 5: data.InsertRange(at, Enumerable.Range(0, 1 + rng.Next(16)).Select(_ => (byte)rng.Next(256))); break;
                case 6: data.RemoveRange(at, Math.Min(data.Count - at, 1 + rng.Next(64))); break;
                default:
                {
                    int len = Math.Min(data.Count - at, 1 + rng.Next(64));
                    data.InsertRange(rng.Next(data.Count), data.GetRange(at, len).ToArray());
                    break;
                }
            }
        }
        return data.ToArray();
    }
}
