namespace QuantSharp.Transforms;

/// <summary>The block rotations FP-Quant applies to linear-layer inputs before activation quantization.</summary>
public enum TransformKind
{
    Identity,
    Hadamard,
    Dct,
    Dst,
    Gsr,
    FastFood,
}

/// <summary>
/// The command-line flag names the transform errors quote. They mirror FP-Quant's <c>--transform_class</c> and
/// <c>--hadamard_group_size</c> (kebab-cased) so users of the Python harness recognise them.
/// </summary>
public static class TransformFlags
{
    public const string Kind = "--transform-class";
    public const string GroupSize = "--hadamard-group-size";
}

/// <summary>Converts between <see cref="TransformKind"/> and FP-Quant's transform names.</summary>
public static class TransformKinds
{
    // Same spelling as FP-Quant's TRANSFORMS table, so configurations carry over unchanged.
    private static readonly (string Name, TransformKind Kind)[] Names =
    [
        ("identity", TransformKind.Identity),
        ("hadamard", TransformKind.Hadamard),
        ("dct", TransformKind.Dct),
        ("dst", TransformKind.Dst),
        ("gsr", TransformKind.Gsr),
        ("fast_food", TransformKind.FastFood),
    ];

    /// <summary>All names <see cref="Parse"/> accepts, in declaration order.</summary>
    public static IReadOnlyList<string> ValidNames { get; } = Names.Select(n => n.Name).ToArray();

    /// <summary>Parses a name such as "hadamard" or "fast_food" (case-insensitive, surrounding blanks ignored).</summary>
    /// <exception cref="QuantSharpException">The name is not one of <see cref="ValidNames"/>.</exception>
    public static TransformKind Parse(string name, string flag = TransformFlags.Kind)
    {
        ArgumentNullException.ThrowIfNull(name);
        string wanted = name.Trim();
        foreach ((string candidate, TransformKind kind) in Names)
        {
            if (string.Equals(candidate, wanted, StringComparison.OrdinalIgnoreCase)) return kind;
        }
        throw new QuantSharpException($"{flag} '{name}': unknown transform; valid names are {string.Join(", ", ValidNames)}.");
    }

    /// <summary>The FP-Quant name of a kind ("fast_food" for <see cref="TransformKind.FastFood"/>).</summary>
    public static string Name(this TransformKind kind)
    {
        foreach ((string name, TransformKind candidate) in Names)
        {
            if (candidate == kind) return name;
        }
        throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a defined transform kind");
    }
}
