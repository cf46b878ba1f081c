using System.Globalization;
using System.Text;
using System.Text.Json;

namespace QuantSharp.Eval.Tasks;

/// <summary>A compiled Jinja expression.</summary>
internal sealed class Expr(Func<Scope, object?> eval)
{
    public object? Eval(Scope scope) => eval(scope);
}

/// <summary>Recursive-descent parser for Jinja expressions, with Jinja's precedence (filters and tests bind tightest).</summary>
internal sealed class ExprParser
{
    private readonly List<string> _t;
    private int _p;

    private ExprParser(string text) => _t = Tokenize(text);

    public static Expr Parse(string text)
    {
        var parser = new ExprParser(text);
        var e = parser.Conditional();
        if (parser._p < parser._t.Count) throw JinjaTemplate.Unsupported($"the expression '{text.Trim()}' (at '{parser._t[parser._p]}')");
        return e;
    }

    private string? Peek(int ahead = 0) => _p + ahead < _t.Count ? _t[_p + ahead] : null;
    private bool Accept(string s) { if (Peek() == s) { _p++; return true; } return false; }
    private void Expect(string s) { if (!Accept(s)) throw JinjaTemplate.Unsupported($"expected '{s}' but found '{Peek() ?? "end"}' in an expression"); }

    private Expr Conditional()
    {
        var value = Or();
        if (Peek() != "if") return value;
        _p++;
        var condition = Or();
        Expr? otherwise = Accept("else") ? Conditional() : null;
        return new Expr(s => Values.Truthy(condition.Eval(s)) ? value.Eval(s) : otherwise is null ? Undefined.Value : otherwise.Eval(s));
    }

    private Expr Or()
    {
        var left = And();
        while (Accept("or")) { var l = left; var r = And(); left = new Expr(s => { var a = l.Eval(s); return Values.Truthy(a) ? a : r.Eval(s); }); }
        return left;
    }

    private Expr And()
    {
        var left = Not();
        while (Accept("and")) { var l = left; var r = Not(); left = new Expr(s => { var a = l.Eval(s); return !Values.Truthy(a) ? a : r.Eval(s); }); }
        return left;
    }

    private Expr Not()
    {
        if (Accept("not")) { var e = Not(); return new Expr(s => !Values.Truthy(e.Eval(s))); }
        return Compare();
    }

    private Expr Compare()
    {
        var left = Concat();
        while (true)
        {
            string? op = Peek();
            if (op is "==" or "!=" or "<" or ">" or "<=" or ">=" or "in") _p++;
            else if (op == "not" && Peek(1) == "in") { _p += 2; op = "not in"; }
            else return left;
            var l = left; var r = Concat(); string o = op;
            left = new Expr(s => Values.Compare(o, l.Eval(s), r.Eval(s)));
        }
    }

    private Expr Concat()
    {
        var left = Add();
        while (Accept("~")) { var l = left; var r = Add(); left = new Expr(s => Values.ToText(l.Eval(s)) + Values.ToText(r.Eval(s))); }
        return left;
    }

    private Expr Add()
    {
        var left = Mul();
        while (Peek() is "+" or "-")
        {
            string op = _t[_p++]; var l = left; var r = Mul();
            left = new Expr(s => Values.Arithmetic(op, l.Eval(s), r.Eval(s)));
        }
        return left;
    }

    private Expr Mul()
    {
        var left = Unary();
        while (Peek() is "*" or "/" or "//" or "%")
        {
            string op = _t[_p++]; var l = left; var r = Unary();
            left = new Expr(s => Values.Arithmetic(op, l.Eval(s), r.Eval(s)));
        }
        return left;
    }

    private Expr Unary()
    {
        if (Accept("-")) { var e = Unary(); return new Expr(s => Values.Arithmetic("-", 0L, e.Eval(s))); }
        if (Accept("+")) return Unary();
        var x = Postfix(Primary());
        while (Accept("|"))
        {
            string name = Name();
            var args = Peek() == "(" ? Args() : [];
            var target = x;
            x = new Expr(s => Builtins.Filter(name, target.Eval(s), args.Select(a => a.Value.Eval(s)).ToList()));
        }
        while (Peek() == "is")
        {
            _p++;
            bool negate = Accept("not");
            string test = Name();
            Expr? arg = Peek() is { } nx && (nx[0] is '\'' or '"' || char.IsDigit(nx[0])) ? Primary() : null;
            var target = x;
            x = new Expr(s => Builtins.Test(test, target.Eval(s), arg?.Eval(s)) != negate);
        }
        return x;
    }

    private Expr Postfix(Expr x)
    {
        while (true)
        {
            if (Accept("."))
            {
                string name = Name();
                var target = x;
                if (Peek() == "(")
                {
                    var args = Args();
                    x = new Expr(s => Builtins.Method(target.Eval(s), name, args.Select(a => a.Value.Eval(s)).ToList()));
                }
                else x = new Expr(s => Values.Attribute(target.Eval(s), name));
            }
            else if (Accept("["))
            {
                var target = x;
                Expr? a = null, b = null, c = null;
                bool slice = false;
                if (Peek() != ":") a = Conditional();
                if (Accept(":"))
                {
                    slice = true;
                    if (Peek() is not ":" and not "]") b = Conditional();
                    if (Accept(":") && Peek() != "]") c = Conditional();
                }
                Expect("]");
                x = slice
                    ? new Expr(s => Values.Slice(target.Eval(s), a?.Eval(s), b?.Eval(s), c?.Eval(s)))
                    : new Expr(s => Values.Item(target.Eval(s), a!.Eval(s)));
            }
            else if (Peek() == "(")
            {
                throw JinjaTemplate.Unsupported("calling a value that is not a known function");
            }
            else return x;
        }
    }

    private List<(string? Name, Expr Value)> Args()
    {
        Expect("(");
        var args = new List<(string?, Expr)>();
        while (!Accept(")"))
        {
            string? name = null;
            if (Peek() is { } n && IsName(n) && Peek(1) == "=") { name = n; _p += 2; }
            args.Add((name, Conditional()));
            if (!Accept(",")) { Expect(")"); break; }
        }
        return args;
    }

    private string Name()
    {
        string? n = Peek();
        if (n is null || !IsName(n)) throw JinjaTemplate.Unsupported($"'{n ?? "end"}' where a name was expected");
        _p++;
        return n;
    }

    private Expr Primary()
    {
        string? t = Peek() ?? throw JinjaTemplate.Unsupported("an empty expression");
        _p++;
        if (t[0] is '\'' or '"')
        {
            string value = t[1..];
            while (Peek() is { } next && next[0] is '\'' or '"') { value += next[1..]; _p++; } // adjacent literals join
            return new Expr(_ => value);
        }
        if (char.IsDigit(t[0]))
        {
            object number = t.Contains('.') ? double.Parse(t, CultureInfo.InvariantCulture) : long.Parse(t, CultureInfo.InvariantCulture);
            return new Expr(_ => number);
        }
        if (t == "(")
        {
            var e = Conditional();
            if (Accept(","))
            {
                var items = new List<Expr> { e };
                while (!Accept(")")) { items.Add(Conditional()); if (!Accept(",")) { Expect(")"); break; } }
                return new Expr(s => items.Select(i => i.Eval(s)).ToList());
            }
            Expect(")");
            return e;
        }
        if (t == "[")
        {
            var items = new List<Expr>();
            while (!Accept("]")) { items.Add(Conditional()); if (!Accept(",")) { Expect("]"); break; } }
            return new Expr(s => items.Select(i => i.Eval(s)).ToList());
        }
        if (t == "{")
        {
            var pairs = new List<(Expr K, Expr V)>();
            while (!Accept("}"))
            {
                var k = Conditional(); Expect(":"); var v = Conditional();
                pairs.Add((k, v));
                if (!Accept(",")) { Expect("}"); break; }
            }
            return new Expr(s => pairs.ToDictionary(p => Values.ToText(p.K.Eval(s)), p => p.V.Eval(s)));
        }
        if (!IsName(t)) throw JinjaTemplate.Unsupported($"the token '{t}' in an expression");
        switch (t)
        {
            case "true" or "True": return new Expr(_ => true);
            case "false" or "False": return new Expr(_ => false);
            case "none" or "None": return new Expr(_ => null);
        }
        if (Peek() == "(")
        {
            var args = Args();
            return t switch
            {
                "namespace" => new Expr(s =>
                {
                    var ns = new Namespace();
                    foreach (var (name, value) in args) ns.Values[name ?? throw JinjaTemplate.Unsupported("namespace() with a positional argument")] = value.Eval(s);
                    return ns;
                }),
                "raise_exception" => new Expr(s => throw new QuantSharpException(
                    "chat template raised: " + Values.ToText(args.Count > 0 ? args[0].Value.Eval(s) : ""))),
                "range" => new Expr(s =>
                {
                    var n = args.Select(a => Values.ToLong(a.Value.Eval(s))).ToList();
                    long start = n.Count > 1 ? n[0] : 0, stop = n.Count > 1 ? n[1] : n[0], step = n.Count > 2 ? n[2] : 1;
                    var list = new List<object?>();
                    for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
                    return list;
                }),
                _ => throw JinjaTemplate.Unsupported($"the function {t}()"),
            };
        }
        string name2 = t;
        return new Expr(s => s.Get(name2));
    }

    private static bool IsName(string t) => (char.IsLetter(t[0]) || t[0] == '_') && t.All(c => char.IsLetterOrDigit(c) || c == '_');

    /// <summary>Tokens: names, numbers, string literals (kept with their opening quote, escapes resolved), operators.</summary>
    private static List<string> Tokenize(string s)
    {
        var tokens = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c is '\'' or '"')
            {
                var sb = new StringBuilder().Append(c);
                i++;
                while (i < s.Length && s[i] != c)
                {
                    if (s[i] == '\\' && i + 1 < s.Length)
                    {
                        i++;
                        sb.Append(s[i] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', '\\' => '\\', '\'' => '\'', '"' => '"', _ => s[i] });
                    }
                    else sb.Append(s[i]);
                    i++;
                }
                if (i >= s.Length) throw new QuantSharpException("chat template: unterminated string literal.");
                i++;
                tokens.Add(sb.ToString());
                continue;
            }
            if (char.IsDigit(c))
            {
                int start = i;
                while (i < s.Length && (char.IsDigit(s[i]) || (s[i] == '.' && i + 1 < s.Length && char.IsDigit(s[i + 1])))) i++;
                tokens.Add(s[start..i]);
                continue;
            }
            if (char.IsLetter(c) || c == '_')
            {
                int start = i;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                tokens.Add(s[start..i]);
                continue;
            }
            string two = i + 1 < s.Length ? s.Substring(i, 2) : "";
            if (two is "==" or "!=" or "<=" or ">=" or "//") { tokens.Add(two); i += 2; continue; }
            if ("+-*/%~|.,:()[]{}<>=".Contains(c)) { tokens.Add(c.ToString()); i++; continue; }
            throw JinjaTemplate.Unsupported($"the character '{c}' in an expression");
        }
        return tokens;
    }
}

/// <summary>Python/Jinja semantics of values: truth, text, comparison, arithmetic, access.</summary>
internal static class Values
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string ToText(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        string s => s,
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}",
        _ => v.ToString() ?? "",
    };

    private static string Repr(object? v) => v is string s ? "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'" : ToText(v);

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        double d => (long)d,
        bool b => b ? 1 : 0,
        string s when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long x) => x,
        _ => throw new QuantSharpException($"chat template: '{ToText(v)}' is not a number."),
    };

    private static bool IsNumber(object? v) => v is long or double or bool;
    private static double ToDouble(object? v) => v is double d ? d : ToLong(v);

    public static bool Equal(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        if (a is string sa && b is string sb) return sa == sb;
        if (a is null or Undefined || b is null or Undefined) return (a is null && b is null) || (a is Undefined && b is Undefined);
        if (a is List<object?> la && b is List<object?> lb) return la.Count == lb.Count && la.Zip(lb).All(p => Equal(p.First, p.Second));
        return ReferenceEquals(a, b);
    }

    public static bool Compare(string op, object? a, object? b)
    {
        switch (op)
        {
            case "==": return Equal(a, b);
            case "!=": return !Equal(a, b);
            case "in": return Contains(b, a);
            case "not in": return !Contains(b, a);
        }
        int c = IsNumber(a) && IsNumber(b) ? ToDouble(a).CompareTo(ToDouble(b))
            : a is string sa && b is string sb ? string.CompareOrdinal(sa, sb)
            : throw new QuantSharpException($"chat template: cannot compare '{ToText(a)}' {op} '{ToText(b)}'.");
        return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
    }

    private static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub && s.Contains(sub, StringComparison.Ordinal),
        List<object?> l => l.Any(x => Equal(x, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k && ns.Values.ContainsKey(k),
        null or Undefined => false,
        _ => throw new QuantSharpException($"chat template: 'in' needs a string, list or mapping, not '{ToText(container)}'."),
    };

    public static object? Arithmetic(string op, object? a, object? b)
    {
        if (op == "+" && a is string sa && b is string sb) return sa + sb;
        if (op == "+" && a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
        if (op == "*" && a is string s && b is long n) return string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n)));
        if (!IsNumber(a) || !IsNumber(b))
            throw new QuantSharpException($"chat template: cannot apply '{op}' to '{ToText(a)}' and '{ToText(b)}'.");
        if (a is double || b is double || op == "/")
        {
            double x = ToDouble(a), y = ToDouble(b);
            return op switch { "+" => x + y, "-" => x - y, "*" => x * y, "/" => x / y, "//" => Math.Floor(x / y), _ => x - y * Math.Floor(x / y) };
        }
        long p = ToLong(a), q = ToLong(b);
        return op switch
        {
            "+" => p + q, "-" => p - q, "*" => p * q,
            "//" => (long)Math.Floor((double)p / q),
            _ => ((p % q) + q) % q,
        };
    }

    public static object? Attribute(object? target, string name) => target switch
    {
        Dictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : Undefined.Value,
        Namespace ns => ns.Values.TryGetValue(name, out var v) ? v : Undefined.Value,
        _ => Undefined.Value,
    };

    public static object? Item(object? target, object? key)
    {
        switch (target)
        {
            case Dictionary<string, object?> d: return key is string k && d.TryGetValue(k, out var v) ? v : Undefined.Value;
            case Namespace ns: return key is string k2 && ns.Values.TryGetValue(k2, out var v2) ? v2 : Undefined.Value;
            case List<object?> l:
            {
                long i = ToLong(key);
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : Undefined.Value;
            }
            case string s:
            {
                long i = ToLong(key);
                if (i < 0) i += s.Length;
                return i >= 0 && i < s.Length ? s[(int)i].ToString() : Undefined.Value;
            }
            default: return Undefined.Value;
        }
    }

    /// <summary>Python slicing target[start:stop:step] for lists and strings.</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        List<object?> items = target switch
        {
            List<object?> l => l,
            string s => s.Select(ch => (object?)ch.ToString()).ToList(),
            _ => throw new QuantSharpException($"chat template: cannot slice '{ToText(target)}'."),
        };
        int n = items.Count;
        long st = step is null ? 1 : ToLong(step);
        if (st == 0) throw new QuantSharpException("chat template: slice step cannot be zero.");
        long Norm(object? v, long dflt) { if (v is null) return dflt; long x = ToLong(v); if (x < 0) x += n; return x; }
        var result = new List<object?>();
        if (st > 0)
        {
            long a = Math.Clamp(Norm(start, 0), 0, n), b = Math.Clamp(Norm(stop, n), 0, n);
            for (long i = a; i < b; i += st) result.Add(items[(int)i]);
        }
        else
        {
            long a = Math.Clamp(Norm(start, n - 1), -1, n - 1), b = stop is null ? -1 : Math.Clamp(Norm(stop, -1), -1, n - 1);
            for (long i = a; i > b; i += st) result.Add(items[(int)i]);
        }
        return target is string ? string.Concat(result.Select(ToText)) : result;
    }

    public static IEnumerable<object?> Iterate(object? v) => v switch
    {
        List<object?> l => l,
        string s => s.Select(c => (object?)c.ToString()),
        Dictionary<string, object?> d => d.Keys,
        null or Undefined => [],
        _ => throw new QuantSharpException($"chat template: cannot iterate over '{ToText(v)}'."),
    };

    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value)),
        _ => null,
    };

    public static string ToJson(object? v) => v switch
    {
        null or Undefined => "null",
        bool b => b ? "true" : "false",
        long or double => ToText(v),
        string s => JsonSerializer.Serialize(s, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }),
        List<object?> l => "[" + string.Join(", ", l.Select(ToJson)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(p => ToJson(p.Key) + ": " + ToJson(p.Value))) + "}",
        _ => ToJson(ToText(v)),
    };
}

/// <summary>The filters, tests and string/dict methods chat templates commonly use.</summary>
internal static class Builtins
{
    public static object? Filter(string name, object? v, List<object?> args) => name switch
    {
        "trim" => Values.ToText(v).Trim(),
        "length" or "count" => v switch
        {
            string s => (long)s.Length,
            List<object?> l => (long)l.Count,
            Dictionary<string, object?> d => (long)d.Count,
            _ => throw new QuantSharpException($"chat template: |length of '{Values.ToText(v)}'."),
        },
        "upper" => Values.ToText(v).ToUpperInvariant(),
        "lower" => Values.ToText(v).ToLowerInvariant(),
        "capitalize" => DocumentPreprocessors.PythonCapitalize(Values.ToText(v)),
        "string" => Values.ToText(v),
        "int" => Values.ToLong(v),
        "join" => string.Join(args.Count > 0 ? Values.ToText(args[0]) : "", Values.Iterate(v).Select(Values.ToText)),
        "first" => Values.Iterate(v).FirstOrDefault(Undefined.Value),
        "last" => Values.Iterate(v).LastOrDefault(Undefined.Value),
        "list" => Values.Iterate(v).ToList(),
        "reverse" => v is string s ? new string(s.Reverse().ToArray()) : Values.Iterate(v).Reverse().ToList(),
        "default" or "d" => v is Undefined || (args.Count > 1 && Values.Truthy(args[1]) && !Values.Truthy(v)) ? (args.Count > 0 ? args[0] : "") : v,
        "replace" => Values.ToText(v).Replace(Values.ToText(args[0]), Values.ToText(args[1]), StringComparison.Ordinal),
        "tojson" => Values.ToJson(v),
        "safe" => v,
        "items" => v is Dictionary<string, object?> d ? d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList() : throw new QuantSharpException("chat template: |items needs a mapping."),
        _ => throw JinjaTemplate.Unsupported($"the filter |{name}"),
    };

    public static bool Test(string name, object? v, object? arg) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is Dictionary<string, object?> or Namespace,
        "iterable" => v is string or List<object?> or Dictionary<string, object?>,
        "sequence" => v is string or List<object?> or Dictionary<string, object?>,
        "even" => Values.ToLong(v) % 2 == 0,
        "odd" => Values.ToLong(v) % 2 != 0,
        "equalto" or "eq" => Values.Equal(v, arg),
        _ => throw JinjaTemplate.Unsupported($"the test 'is {name}'"),
    };

    public static object? Method(object? target, string name, List<object?> args)
    {
        if (target is string s)
        {
            string? chars = args.Count > 0 && args[0] is string c ? c : null;
            return name switch
            {
                "strip" => chars is null ? s.Trim() : s.Trim(chars.ToCharArray()),
                "lstrip" => chars is null ? s.TrimStart() : s.TrimStart(chars.ToCharArray()),
                "rstrip" => chars is null ? s.TrimEnd() : s.TrimEnd(chars.ToCharArray()),
                "startswith" => args[0] is List<object?> ps ? ps.Any(p => s.StartsWith(Values.ToText(p), StringComparison.Ordinal)) : s.StartsWith(Values.ToText(args[0]), StringComparison.Ordinal),
                "endswith" => args[0] is List<object?> pe ? pe.Any(p => s.EndsWith(Values.ToText(p), StringComparison.Ordinal)) : s.EndsWith(Values.ToText(args[0]), StringComparison.Ordinal),
                "split" => Split(s, chars, args.Count > 1 ? (int)Values.ToLong(args[1]) : -1),
                "upper" => s.ToUpperInvariant(),
                "lower" => s.ToLowerInvariant(),
                "title" => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant()),
                "capitalize" => DocumentPreprocessors.PythonCapitalize(s),
                "replace" => s.Replace(Values.ToText(args[0]), Values.ToText(args[1]), StringComparison.Ordinal),
                "find" => (long)s.IndexOf(Values.ToText(args[0]), StringComparison.Ordinal),
                _ => throw JinjaTemplate.Unsupported($"the string method .{name}()"),
            };
        }
        if (target is Dictionary<string, object?> d)
        {
            return name switch
            {
                "get" => d.TryGetValue(Values.ToText(args[0]), out var v) ? v : args.Count > 1 ? args[1] : null,
                "items" => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                "keys" => d.Keys.Select(k => (object?)k).ToList(),
                "values" => d.Values.ToList(),
                _ => throw JinjaTemplate.Unsupported($"the mapping method .{name}()"),
            };
        }
        throw JinjaTemplate.Unsupported($"the method .{name}() on '{Values.ToText(target)}'");
    }

    private static List<object?> Split(string s, string? sep, int maxSplit)
    {
        if (sep is null)
        {
            var parts = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return parts.Select(p => (object?)p).ToList();
        }
        var result = maxSplit < 0 ? s.Split(sep) : s.Split(sep, maxSplit + 1);
        return result.Select(p => (object?)p).ToList();
    }
}
