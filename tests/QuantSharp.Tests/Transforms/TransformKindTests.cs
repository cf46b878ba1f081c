using QuantSharp.Transforms;

namespace QuantSharp.Tests.Transforms;

public sealed class TransformKindTests
{
    [Theory]
    [InlineData("identity", TransformKind.Identity)]
    [InlineData("hadamard", TransformKind.Hadamard)]
    [InlineData("dct", TransformKind.Dct)]
    [InlineData("dst", TransformKind.Dst)]
    [InlineData("gsr", TransformKind.Gsr)]
    [InlineData("fast_food", TransformKind.FastFood)]
    [InlineData(" Hadamard ", TransformKind.Hadamard)]
    public void Parse_accepts_fp_quant_names(string name, TransformKind expected)
    {
        Assert.Equal(expected, TransformKinds.Parse(name));
    }

    [Fact]
    public void Name_round_trips_through_parse()
    {
        foreach (TransformKind kind in Enum.GetValues<TransformKind>())
            Assert.Equal(kind, TransformKinds.Parse(kind.Name()));
    }

    [Fact]
    public void Unknown_name_names_the_flag_and_lists_the_valid_names()
    {
        var error = Assert.Throws<QuantSharpException>(() => TransformKinds.Parse("walsh"));
        Assert.Contains(TransformFlags.Kind, error.Message);
        Assert.Contains("'walsh'", error.Message);
        foreach (string name in new[] { "identity", "hadamard", "dct", "dst", "gsr", "fast_food" })
            Assert.Contains(name, error.Message);
    }
}
