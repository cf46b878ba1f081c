using System.Globalization;
using System.Text;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// A small interpreter for the Jinja subset that chat templates in tokenizer_config.json use (Llama-3, Qwen2/3 style):
/// output {{ }}, for (with loop.index0/index/first/last/length, an inline "if" filter, else), if/elif/else, set (also
/// namespace attributes), comments, whitespace control (-), and the trim_blocks/lstrip_blocks settings transformers
/// renders with. Expressions: literals, lists, dicts, attribute/item access, slices, arithmetic, ~ concatenation,
/// comparisons, in, and/or/not, conditional expressions, tests (defined, none, string, ...), common filters and string
/// methods, namespace() and raise_exception(). Anything else fails with a QuantSharpException naming the construct.
/// </summary>
public sealed partial class JinjaTemplate
{
    private readonly List<Node> _nodes;
    private readonly string _source;

    public JinjaTemplate(string source)
    {
        _source = source;
        var tokens = JinjaLexer.Split(source);
        int pos = 0;
        _nodes = ParseBlock(tokens, ref pos, []);
        if (pos < tokens.Count) throw Unsupported($"unexpected {{% {tokens[pos].Text} %}}");
    }

    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var scope = new Scope(null);
        foreach (var (k, v) in variables) scope.Set(k, v);
        var sb = new StringBuilder();
        foreach (var n in _nodes) n.Render(scope, sb);
        return sb.ToString();
    }

    internal static QuantSharpException Unsupported(string what) =>
        new($"chat template: {what} is not supported by QuantSharp's Jinja subset.");

    // ---------------------------------------------------------------- tree

    private abstract record Node
    {
        public abstract void Render(Scope scope, StringBuilder sb);
    }

    private sealed record TextNode(string Text) : Node
    {
        public override void Render(Scope scope, StringBuilder sb) => sb.Append(Text);
    }

    private sealed record OutputNode(Expr Value) : Node
    {
        public override void Render(Scope scope, StringBuilder sb) => sb.Append(Values.ToText(Value.Eval(scope)));
    }

    private sealed record IfNode(List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else) : Node
    {
        public override void Render(Scope scope, StringBuilder sb)
        {
            foreach (var (c, body) in Branches)
                if (Values.Truthy(c.Eval(scope))) { foreach (var n in body) n.Render(scope, sb); return; }
            if (Else is not null) foreach (var n in Else) n.Render(scope, sb);
        }
    }

    private sealed record ForNode(IReadOnlyList<string> Names, Expr Source, Expr? Filter, List<Node> Body, List<Node>? Else) : Node
    {
        public override void Render(Scope scope, StringBuilder sb)
        {
            var items = Values.Iterate(Source.Eval(scope)).ToList();
            if (Filter is not null)
                items = items.Where(item => { var s = new Scope(scope); Bind(s, item); return Values.Truthy(Filter.Eval(s)); }).ToList();
            if (items.Count == 0 && Else is not null) { foreach (var n in Else) n.Render(scope, sb); return; }
            for (int i = 0; i < items.Count; i++)
            {
                // Jinja scoping: a loop body sees the outer names, and its own sets do not leak out (namespaces do).
                var inner = new Scope(scope);
                Bind(inner, items[i]);
                inner.Set("loop", new Dictionary<string, object?>
                {
                    ["index0"] = (long)i, ["index"] = (long)(i + 1), ["first"] = i == 0, ["last"] = i == items.Count - 1,
                    ["length"] = (long)items.Count, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                    ["previtem"] = i > 0 ? items[i - 1] : Undefined.Value, ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Value,
                });
                foreach (var n in Body) n.Render(inner, sb);
            }
        }

        private void Bind(Scope s, object? item)
        {
            if (Names.Count == 1) { s.Set(Names[0], item); return; }
            var parts = Values.Iterate(item).ToList();
            if (parts.Count != Names.Count) throw new QuantSharpException($"chat template: cannot unpack {parts.Count} values into {Names.Count} names.");
            for (int i = 0; i < Names.Count; i++) s.Set(Names[i], parts[i]);
        }
    }

    private sealed record SetNode(string Name, string? Attribute, Expr Value) : Node
    {
        public override void Render(Scope scope, StringBuilder sb)
        {
            object? v = Value.Eval(scope);
            if (Attribute is null) { scope.Set(Name, v); return; }
            if (scope.Get(Name) is Namespace ns) ns.Values[Attribute] = v;
            else throw new QuantSharpException($"chat template: set {Name}.{Attribute}: {Name} is not a namespace().");
        }
    }

    // ---------------------------------------------------------------- statements

    private List<Node> ParseBlock(List<JinjaLexer.Token> tokens, ref int pos, HashSet<string> stopAt)
    {
        var nodes = new List<Node>();
        while (pos < tokens.Count)
        {
            var t = tokens[pos];
            switch (t.Kind)
            {
                case JinjaLexer.Kind.Text: nodes.Add(new TextNode(t.Text)); pos++; break;
                case JinjaLexer.Kind.Output: nodes.Add(new OutputNode(ExprParser.Parse(t.Text))); pos++; break;
                default:
                {
                    string keyword = FirstWord(t.Text);
                    if (stopAt.Contains(keyword)) return nodes;
                    pos++;
                    nodes.Add(keyword switch
                    {
                        "if" => ParseIf(tokens, ref pos, t.Text[2..]),
                        "for" => ParseFor(tokens, ref pos, t.Text[3..]),
                        "set" => ParseSet(t.Text[3..]),
                        _ => throw Unsupported($"{{% {keyword} %}}"),
                    });
                    break;
                }
            }
        }
        if (stopAt.Count > 0) throw new QuantSharpException($"chat template: missing {{% {string.Join(" / ", stopAt)} %}}.");
        return nodes;
    }

    private static string FirstWord(string s)
    {
        s = s.TrimStart();
        int end = 0;
        while (end < s.Length && (char.IsLetterOrDigit(s[end]) || s[end] == '_')) end++;
        return s[..end];
    }

    private Node ParseIf(List<JinjaLexer.Token> tokens, ref int pos, string condition)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? elseBody = null;
        var stops = new HashSet<string> { "elif", "else", "endif" };
        var body = ParseBlock(tokens, ref pos, stops);
        branches.Add((ExprParser.Parse(condition), body));
        while (true)
        {
            string text = tokens[pos].Text.TrimStart();
            string kw = FirstWord(text);
            pos++;
            if (kw == "endif") break;
            if (kw == "elif") branches.Add((ExprParser.Parse(text[4..]), ParseBlock(tokens, ref pos, stops)));
            else elseBody = ParseBlock(tokens, ref pos, ["endif"]);
        }
        return new IfNode(branches, elseBody);
    }

    private Node ParseFor(List<JinjaLexer.Token> tokens, ref int pos, string header)
    {
        int inAt = FindKeyword(header, "in");
        if (inAt < 0) throw Unsupported($"{{% for{header} %}}");
        var names = header[..inAt].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        string rest = header[(inAt + 2)..];
        Expr? filter = null;
        int ifAt = FindKeyword(rest, "if");
        if (ifAt >= 0 && !rest[..ifAt].Contains(" else ", StringComparison.Ordinal))
        {
            filter = ExprParser.Parse(rest[(ifAt + 2)..]);
            rest = rest[..ifAt];
        }
        if (FindKeyword(rest, "recursive") >= 0) throw Unsupported("a recursive for loop");
        var body = ParseBlock(tokens, ref pos, ["else", "endfor"]);
        List<Node>? elseBody = null;
        if (FirstWord(tokens[pos].Text) == "else")
        {
            pos++;
            elseBody = ParseBlock(tokens, ref pos, ["endfor"]);
        }
        pos++;
        return new ForNode(names, ExprParser.Parse(rest), filter, body, elseBody);
    }

    private static Node ParseSet(string rest)
    {
        int eq = rest.IndexOf('=');
        if (eq < 0) throw Unsupported("a {% set %} block (without '=')");
        string target = rest[..eq].Trim();
        var value = ExprParser.Parse(rest[(eq + 1)..]);
        int dot = target.IndexOf('.');
        return dot < 0 ? new SetNode(target, null, value) : new SetNode(target[..dot], target[(dot + 1)..], value);
    }

    /// <summary>Position of a whole-word keyword outside string literals, or −1.</summary>
    private static int FindKeyword(string s, string word)
    {
        char quote = '\0';
        for (int i = 0; i + word.Length <= s.Length; i++)
        {
            char c = s[i];
            if (quote != '\0') { if (c == '\\') i++; else if (c == quote) quote = '\0'; continue; }
            if (c is '\'' or '"') { quote = c; continue; }
            if (string.CompareOrdinal(s, i, word, 0, word.Length) == 0
                && (i == 0 || !IsWordChar(s[i - 1])) && (i + word.Length == s.Length || !IsWordChar(s[i + word.Length])))
                return i;
        }
        return -1;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    public override string ToString() => _source;
}

/// <summary>Jinja's undefined value: falsy, prints as nothing, and any attribute of it is undefined too.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Value = new();
}

/// <summary>namespace(...): the one mutable object a loop body can write to.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Values { get; } = [];
}

internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _vars = [];

    public void Set(string name, object? value) => _vars[name] = value;

    public object? Get(string name) =>
        _vars.TryGetValue(name, out var v) ? v : parent is not null ? parent.Get(name) : Undefined.Value;
}
