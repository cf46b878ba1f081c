using System.Text.Json.Nodes;
using QuantSharp.Api;

namespace QuantSharp.Tests.Api;

public class RecipeJsonTests
{
    private static WeightOnlyConfig Parse(string json) => RecipeJson.Parse(JsonNode.Parse(json), "r.json");

    [Fact]
    public void GlobalAndLocalSectionsBecomeOneConfigWithRules()
    {
        var c = Parse("""{"rtn": {"global": {"bits": 3, "group_size": 128, "use_sym": false}, "local": {"lm_head": {"dtype": "fp32"}, "down_proj": {"bits": 8}}}}""");
        var rtn = Assert.IsType<RtnConfig>(c);
        Assert.Equal((3, 128, false), (rtn.Bits, rtn.GroupSize, rtn.UseSym));
        Assert.Equal(["lm_head", "down_proj"], c.Local.Select(l => l.Pattern));
        Assert.True(c.Local[0].Config.IsFloat);
        // A local entry starts from its algorithm's global settings.
        var down = c.Local[1].Config;
        Assert.Equal((8, 128, false), (down.Bits, down.GroupSize, down.UseSym));
    }

    [Fact]
    public void IncDefaultsAndFlatSectionsAsIncFromDict()
    {
        var g = Assert.IsType<GptqConfig>(Parse("""{"gptq": {"bits": 4, "hybrid_act_order": true}}"""));
        Assert.True(g.HybridOrder);
        Assert.Equal((32, 0.01, 2048, false, false, false), (g.GroupSize, g.Percdamp, g.BlockSize, g.ActOrder, g.StaticGroups, g.TrueSequential));
        var h = new HqqConfig();
        Assert.Equal((64, false, true, false, 128), (h.GroupSize, h.UseSym, h.QuantZero, h.QuantScale, h.ScaleQuantGroupSize));
        Assert.Equal((true, true, false), (new AwqConfig().UseAutoScale, new AwqConfig().UseAutoClip, new AwqConfig().Folding));
        Assert.Equal((200, 128, 8, 128), (new AutoRoundConfig().Iters, new AutoRoundConfig().Nsamples, new AutoRoundConfig().BatchSize, new AutoRoundConfig().GroupSize));
    }

    [Fact]
    public void MixedRecipeKeepsEachRulesAlgorithm()
    {
        var c = Parse("""{"gptq": {"global": {"bits": 4, "group_size": 64}}, "rtn": {"local": {"mlp.down_proj": {"bits": 8, "group_size": -1}}}}""");
        Assert.IsType<GptqConfig>(c);
        var rule = Assert.Single(c.Local);
        var rtn = Assert.IsType<RtnConfig>(rule.Config);
        Assert.Equal((8, -1), (rtn.Bits, rtn.GroupSize));
    }

    [Theory]
    [InlineData("""{"gtpq": {"bits": 4}}""", "unknown algorithm 'gtpq'")]
    [InlineData("""{"rtn": {"global": {"bitz": 4}}}""", "unknown key 'bitz' for rtn")]
    [InlineData("""{"rtn": {"global": {"act_order": true}}}""", "unknown key 'act_order' for rtn")]
    [InlineData("""{"rtn": {"global": {"bits": "four"}}}""", "bits \"four\": expected an integer")]
    [InlineData("""{"rtn": {"global": {}}, "gptq": {"global": {}}}""", "both 'rtn' and 'gptq' have a global section")]
    public void BadRecipesNameTheFileAndKey(string json, string expected)
    {
        var e = Assert.Throws<QuantSharpException>(() => Parse(json));
        Assert.Contains("r.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ToRecipeReadsBackToTheSameRules()
    {
        var c = Parse("""{"gptq": {"global": {"bits": 3, "group_size": 128, "use_sym": false, "true_sequential": true}}, "rtn": {"local": {"mlp": {"bits": 8}}}}""");
        var again = RecipeJson.Parse(RecipeJson.ToRecipe(c), "again");
        Assert.Equal(RecipeJson.Settings(c).ToJsonString(), RecipeJson.Settings(again).ToJsonString());
        Assert.Equal(RecipeJson.Settings(c.Local[0].Config).ToJsonString(), RecipeJson.Settings(again.Local[0].Config).ToJsonString());
    }

    [Fact]
    public void SetLocalOnACopyLeavesTheOriginalAlone()
    {
        var a = new RtnConfig { Bits = 4 };
        var b = a with { Bits = 3 };
        b.SetLocal("lm_head", new RtnConfig { Dtype = "fp32" });
        Assert.Empty(a.Local);
        Assert.Single(b.Local);
    }
}
