using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// A 4-bit element format given as an explicit ascending table of levels (Intel Neural Compressor's nf4, fp4_e2m1_bnb
/// and fp4_e2m1). The scale of a group is absmax / max(levels); x/scale goes to the nearest level, decided by the
/// midpoints between neighbours: level i takes (mid[i−1], mid[i]], so a value exactly on a midpoint goes to the LOWER
/// level (INC's `mid[i-1] &lt; x &lt;= mid[i]` rule; torch.bucketize with right = false is the same rule). Values
/// beyond the ends saturate to the end levels. Codes are the level index (uint8, 0 = the most negative level), which
/// is also bitsandbytes' NF4 code; <see cref="IncBitCodes"/> gives INC's own 4-bit codes for interoperability.
/// </summary>
public sealed class LevelTable
{
    private readonly float[] _midpoints;

    private LevelTable(string name, double[] levels, int[] incBits)
    {
        if (levels.Length != incBits.Length) throw new ArgumentException("one INC code per level");
        for (int i = 1; i < levels.Length; i++)
            if (!(levels[i] > levels[i - 1])) throw new ArgumentException("levels must ascend strictly", nameof(levels));
        Name = name;
        Levels = levels.Select(v => (float)v).ToArray();
        // Midpoints in double, as INC computes them from its Python float table, then compared in float32.
        _midpoints = Enumerable.Range(0, levels.Length - 1).Select(i => (float)((levels[i] + levels[i + 1]) / 2)).ToArray();
        IncBitCodes = incBits.Select(b => (byte)(b & 0xF)).ToArray();
        MaxLevel = Levels[^1];
    }

    /// <summary>QLoRA's NormalFloat-4 levels (the exact float32 values bitsandbytes and INC use), max 1.</summary>
    public static LevelTable Nf4 { get; } = new("nf4",
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    ],
    [7, 1, 2, 3, 4, 5, 6, 0, -8, -7, -6, -5, -4, -3, -2, -1]);

    /// <summary>
    /// bitsandbytes' FP4 (E2M1 with its own exponent bias): {0, ±0.0625, ±2, ±3, ±4, ±6, ±8, ±12}; 15 levels (one zero),
    /// max 12, so scale = absmax/12. INC's names fp4 and fp4_e2m1_bnb both mean this table.
    /// </summary>
    public static LevelTable Fp4Bnb { get; } = new("fp4_e2m1_bnb",
        [-12, -8, -6, -4, -3, -2, -0.0625, 0, 0.0625, 2, 3, 4, 6, 8, 12],
        [-5, -6, -3, -4, -1, -2, -7, 0, 1, 6, 7, 4, 5, 2, 3]);

    /// <summary>
    /// INC's fp4_e2m1: the E2M1 magnitudes divided by 6, except that the subnormal 0.5 is replaced by bitsandbytes'
    /// 0.0625 (so ±0.0625/6 instead of ±1/12). Not our <c>fp</c> format (true E2M1), hence a table of its own.
    /// </summary>
    public static LevelTable Fp4E2M1Inc { get; } = new("fp4_e2m1",
        [-1.0, -4.0 / 6, -0.5, -2.0 / 6, -0.25, -1.0 / 6, -0.0625 / 6, 0, 0.0625 / 6, 1.0 / 6, 0.25, 2.0 / 6, 0.5, 4.0 / 6, 1.0],
        [-1, -2, -3, -4, -5, -6, -7, 0, 1, 2, 3, 4, 5, 6, 7]);

    public string Name { get; }

    /// <summary>The levels, ascending, as float32.</summary>
    public float[] Levels { get; }

    /// <summary>The largest level: scale = absmax / MaxLevel.</summary>
    public float MaxLevel { get; }

    /// <summary>INC's 4-bit code (its *_BIT tables, two's complement masked to 4 bits) of each level index.</summary>
    public byte[] IncBitCodes { get; }

    /// <summary>Index of the nearest level of each value of <paramref name="x"/> (already divided by the scale), int64.</summary>
    public Tensor IndexOf(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor mids = DeviceConstants.Get("level-mids:" + Name, x.device, () => _midpoints);
        return bucketize(x.to(ScalarType.Float32).contiguous(), mids, false, false).MoveToOuterDisposeScope();
    }

    /// <summary>The nearest level of each value (float32).</summary>
    public Tensor Round(Tensor x)
    {
        using var scope = NewDisposeScope();
        return Decode(IndexOf(x)).MoveToOuterDisposeScope();
    }

    /// <summary>Level values (float32) of level-index codes (any integer dtype).</summary>
    public Tensor Decode(Tensor codes)
    {
        using var scope = NewDisposeScope();
        Tensor levels = DeviceConstants.Get("levels:" + Name, codes.device, () => Levels);
        return levels.index(codes.to(ScalarType.Int64)).MoveToOuterDisposeScope();
    }

    /// <summary>Level-index codes (uint8) of values that are already levels.</summary>
    public Tensor Encode(Tensor levels)
    {
        using var scope = NewDisposeScope();
        return IndexOf(levels).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
