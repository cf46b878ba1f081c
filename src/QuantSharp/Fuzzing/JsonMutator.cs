using System.Text;
using System.Text.Json.Nodes;

namespace QuantSharp.Fuzzing;

/// <summary>
/// Structure-aware mutations of a JSON document: a random node (object member, array element) is replaced by a value
/// of another kind or a boundary value (negative, zero, huge, NaN-like, empty, deeply nested), removed, or
/// duplicated. Byte-level mutants of JSON almost never parse; these reach the semantic checks behind the parser.
/// </summary>
public static class JsonMutator
{
    public static byte[] Mutate(byte[] json, Random rng)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (System.Text.Json.JsonException) { return ByteMutator.Mutate(json, rng); }
        if (root is null || rng.Next(5) == 0) return ByteMutator.Mutate(json, rng); // some byte-level cases too
        int count = 1 + rng.Next(3);
        for (int m = 0; m < count; m++)
        {
            var nodes = new List<JsonNode>();
            Collect(root, nodes, rng, limit: 4000);
            if (nodes.Count == 0) break;
            var victim = nodes[rng.Next(nodes.Count)];
            var parent = victim.Parent;
            if (parent is null) continue;
            int action = rng.Next(10);
            if (parent is JsonObject obj)
            {
                string key = victim.GetPropertyName();
                if (action == 0) obj.Remove(key);
                else obj[key] = RandomValue(rng);
            }
            else if (parent is JsonArray arr)
            {
                int index = victim.GetElementIndex();
                if (action == 0) arr.RemoveAt(index);
                else if (action == 1) arr.Add(victim.DeepClone());
                else arr[index] = RandomValue(rng);
            }
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    /// <summary>Collects nodes, sampling big arrays (vocabularies, merges) so the walk stays cheap.</summary>
    private static void Collect(JsonNode node, List<JsonNode> into, Random rng, int limit)
    {
        if (into.Count >= limit) return;
        switch (node)
        {
            case JsonObject o:
            {
                var members = o.ToList();
                // A vocabulary is an object of thousands of members: sample it, or no mutation would reach the rest.
                var picked = members.Count <= 16 ? members : Enumerable.Range(0, 8).Select(_ => members[rng.Next(members.Count)]);
                foreach (var (_, child) in picked)
                    if (child is not null) { into.Add(child); Collect(child, into, rng, limit); }
                break;
            }
            case JsonArray a:
                for (int k = 0; k < Math.Min(a.Count, 8); k++)
                {
                    var child = a[a.Count <= 8 ? k : rng.Next(a.Count)];
                    if (child is not null) { into.Add(child); Collect(child, into, rng, limit); }
                }
                break;
        }
    }

    private static JsonNode? RandomValue(Random rng) => rng.Next(16) switch
    {
        0 => null,
        1 => JsonValue.Create(-1),
        2 => JsonValue.Create(0),
        3 => JsonValue.Create(long.MaxValue),
        4 => JsonValue.Create(1e308),
        5 => JsonValue.Create(-2147483648L),
        6 => JsonValue.Create(""),
        7 => JsonValue.Create(new string('x', 1 + rng.Next(300))),
        8 => new JsonArray(),
        9 => new JsonObject(),
        10 => JsonValue.Create(true),
        11 => JsonValue.Create(0.5),
        12 => JsonValue.Create(2147483648L),
        13 => Nested(rng.Next(1, 200)),
        14 => new JsonArray(JsonValue.Create("a"), JsonValue.Create(1)),
        _ => JsonValue.Create("\u0000\uFFFD\uD800"[..rng.Next(1, 3)]),
    };

    private static JsonNode Nested(int depth)
    {
        JsonNode n = new JsonArray();
        for (int i = 0; i < depth; i++) n = new JsonArray(n);
        return n;
    }
}
