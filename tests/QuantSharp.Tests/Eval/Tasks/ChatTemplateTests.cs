using QuantSharp.Eval.Tasks;

namespace QuantSharp.Tests.Eval.Tasks;

/// <summary>Templates written in the style of the Llama-3 and Qwen chat templates, exercising the same constructs.</summary>
public class ChatTemplateTests
{
    // Llama-3 style: set inside a loop, loop.index0, a filter binding tighter than +, bos_token.
    private const string Llama3Style =
        "{% set msgs = messages %}{% for m in msgs %}{% set text = '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'+ m['content'] | trim + '<|eot_id|>' %}" +
        "{% if loop.index0 == 0 %}{% set text = bos_token + text %}{% endif %}{{ text }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    // Qwen style: whitespace control, a default system turn, attribute access, and/or/not, elif, escapes in literals.
    private const string QwenStyle = """
        {%- if messages[0]['role'] == 'system' %}
            {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
        {%- else %}
            {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
        {%- endif %}
        {%- for message in messages %}
            {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- elif message.role == "tool" %}
                {{- '<tool>' ~ message.content ~ '</tool>\n' }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}
        """;

    // Qwen3 style: namespace, a reversed slice, |length arithmetic, string tests and methods, "is defined ... is false".
    private const string Qwen3Style = """
        {%- set ns = namespace(last_user=-1) %}
        {%- for message in messages[::-1] %}
            {%- set index = (messages|length - 1) - loop.index0 %}
            {%- if ns.last_user == -1 and message.role == "user" and message.content is string and not(message.content.startswith('<tool')) %}
                {%- set ns.last_user = index %}
            {%- endif %}
        {%- endfor %}
        {%- for message in messages %}
            {%- set content = message.content.split('</think>')[-1].lstrip('\n') if '</think>' in message.content else message.content %}
            {{- '<|im_start|>' + message.role + '\n' + content + ('*' if loop.index0 == ns.last_user else '') + '<|im_end|>\n' }}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
            {%- if enable_thinking is defined and enable_thinking is false %}
                {{- '<think>\n\n</think>\n\n' }}
            {%- endif %}
        {%- endif %}
        """;

    [Fact]
    public void Llama3StyleTemplate()
    {
        var t = new ChatTemplate(Llama3Style, bosToken: "<|begin_of_text|>");
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            t.UserTurn("  Hi there \n"));
    }

    [Fact]
    public void QwenStyleTemplateWithWhitespaceControl()
    {
        var t = new ChatTemplate(QwenStyle);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nQuestion: 2+2?\nAnswer:<|im_end|>\n<|im_start|>assistant\n",
            t.UserTurn("Question: 2+2?\nAnswer:"));
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<tool>42</tool>\n",
            t.Render([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("tool", "42")], addGenerationPrompt: false));
    }

    [Fact]
    public void Qwen3StyleTemplateWithNamespaceSlicesAndStringMethods()
    {
        var t = new ChatTemplate(Qwen3Style);
        Assert.Equal("<|im_start|>user\nfirst<|im_end|>\n<|im_start|>assistant\nanswer<|im_end|>\n<|im_start|>user\nsecond*<|im_end|>\n<|im_start|>assistant\n",
            t.Render([("user", "first"), ("assistant", "<think>x</think>\n\nanswer"), ("user", "second")], addGenerationPrompt: true));
    }

    [Fact]
    public void TrimAndLstripBlocksAsTransformersRendersThem()
    {
        // trim_blocks removes the newline after a block tag; lstrip_blocks the indentation before one.
        var t = new JinjaTemplate("A\n  {% if x %}\nB\n  {% endif %}\nC {{ x }}\n");
        Assert.Equal("A\nB\nC True\n", t.Render(new Dictionary<string, object?> { ["x"] = true }));
    }

    [Fact]
    public void ExpressionsBehaveLikePython()
    {
        string R(string expr, params (string, object?)[] vars) =>
            new JinjaTemplate("{{ " + expr + " }}").Render(vars.ToDictionary(v => v.Item1, v => v.Item2));
        Assert.Equal("cba", R("'abc'[::-1]"));
        Assert.Equal("bc", R("'abc'[1:]"));
        Assert.Equal("7", R("1 + 2 * 3"));
        Assert.Equal("1", R("-7 // 2 + 5"));
        Assert.Equal("x-3", R("'x' ~ '-' ~ 3"));
        Assert.Equal("True", R("'b' in ['a', 'b'] and not 'c' in 'abd'"));
        Assert.Equal("", R("missing.attribute"));
        Assert.Equal("yes", R("'yes' if missing is not defined else 'no'"));
        Assert.Equal("a,b", R("['a', 'b'] | join(',')"));
        Assert.Equal("2", R("xs | length", ("xs", new List<object?> { 1L, 2L })));
        Assert.Equal("{\"a\": [1, \"é\"]}", R("d | tojson", ("d", new Dictionary<string, object?> { ["a"] = new List<object?> { 1L, "é" } })));
    }

    [Fact]
    public void UnsupportedConstructsAreNamed()
    {
        var e = Assert.Throws<QuantSharpException>(() => new JinjaTemplate("{% macro f() %}x{% endmacro %}"));
        Assert.Contains("{% macro %}", e.Message);
        e = Assert.Throws<QuantSharpException>(() => new JinjaTemplate("{{ x | wordwrap }}").Render(new Dictionary<string, object?> { ["x"] = "a" }));
        Assert.Contains("|wordwrap", e.Message);
        e = Assert.Throws<QuantSharpException>(() => new JinjaTemplate("{{ strftime_now('%Y') }}"));
        Assert.Contains("strftime_now()", e.Message);
        e = Assert.Throws<QuantSharpException>(() => new JinjaTemplate("{{ raise_exception('roles must alternate') }}").Render(new Dictionary<string, object?>()));
        Assert.Contains("roles must alternate", e.Message);
    }

    [Fact]
    public void ModelFolderWithoutATemplateIsNamed()
    {
        var e = Assert.Throws<QuantSharpException>(() => ChatTemplate.FromModelDirectory(Fixtures.MicroQwen3));
        Assert.Contains("chat_template", e.Message);
        Assert.Contains("tokenizer_config.json", e.Message);
    }

    [Fact]
    public void TemplateFromTokenizerConfigWrapsTaskPrompts()
    {
        using var dir = Fixtures.NewTempDir();
        File.WriteAllText(dir.File("tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            bos_token = new { content = "<s>" },
            chat_template = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}",
        }));
        var t = ChatTemplate.FromModelDirectory(dir.Path);
        Assert.Equal("<s>[user]Question: x\nAnswer:[assistant]", t.UserTurn("Question: x\nAnswer:"));
    }
}
