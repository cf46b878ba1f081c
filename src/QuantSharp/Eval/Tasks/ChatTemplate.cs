using System.Text.Json;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// The chat_template of a model's tokenizer_config.json, rendered with QuantSharp's Jinja subset the way transformers'
/// apply_chat_template does (messages, add_generation_prompt, bos_token, eos_token). Task prompts are sent as one
/// user turn, as lm-eval does without --fewshot_as_multiturn.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly string _bos, _eos;

    public ChatTemplate(string template, string bosToken = "", string eosToken = "")
    {
        _template = new JinjaTemplate(template);
        _bos = bosToken;
        _eos = eosToken;
    }

    public static ChatTemplate FromModelDirectory(string dir)
    {
        string path = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: not found; --apply-chat-template needs the model's tokenizer_config.json.");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        string? template = null;
        if (root.TryGetProperty("chat_template", out var t))
        {
            // A string, or a list of {name, template} (the one named "default" is used).
            if (t.ValueKind == JsonValueKind.String) template = t.GetString();
            else if (t.ValueKind == JsonValueKind.Array)
                template = t.EnumerateArray().Where(x => x.TryGetProperty("name", out var n) && n.GetString() == "default")
                    .Select(x => x.GetProperty("template").GetString()).FirstOrDefault();
        }
        string jinja = Path.Combine(dir, "chat_template.jinja");
        if (template is null && File.Exists(jinja)) template = File.ReadAllText(jinja);
        if (template is null) throw new QuantSharpException($"{path}: has no chat_template (and there is no chat_template.jinja); drop --apply-chat-template.");
        return new ChatTemplate(template, TokenText(root, "bos_token"), TokenText(root, "eos_token"));
    }

    private static string TokenText(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) ? "" : v.ValueKind switch
        {
            JsonValueKind.String => v.GetString() ?? "",
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString() ?? "",
            _ => "",
        };

    /// <summary>Renders a conversation of (role, content) messages.</summary>
    public string Render(IEnumerable<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        var list = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList();
        return _template.Render(new Dictionary<string, object?>
        {
            ["messages"] = list,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = _bos,
            ["eos_token"] = _eos,
        });
    }

    /// <summary>The prompt as one user turn followed by the assistant's generation prompt.</summary>
    public string UserTurn(string prompt) => Render([("user", prompt)], addGenerationPrompt: true);
}
