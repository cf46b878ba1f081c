namespace QuantSharp.Eval.Tasks;

/// <summary>A (context, continuation) pair whose log-likelihood is scored.</summary>
public sealed record LoglikelihoodRequest(string Context, string Continuation);

/// <summary>
/// Everything to score one document: the requests (one per choice; one for last-word; none for generation), the
/// gold index, the choice texts (acc_norm divides by their length), and for generation the prompt and reference.
/// </summary>
public sealed record DocPrompt(
    TaskDocument Doc,
    IReadOnlyList<LoglikelihoodRequest> Requests,
    int Gold,
    IReadOnlyList<string> Choices,
    string? GenerationPrompt = null,
    string? Reference = null);

/// <summary>
/// Builds a document's prompt the way lm-eval's fewshot_context does: description, then each example as
/// text + target_delimiter + target + fewshot_delimiter, then the document's own text.
/// </summary>
public sealed class TaskPromptBuilder
{
    private readonly TaskSpec _spec;
    private readonly Func<string, string>? _chat;

    /// <param name="chatTemplate">Wraps the whole prompt as one user turn (a chat template), or null for plain text.</param>
    public TaskPromptBuilder(TaskSpec spec, Func<string, string>? chatTemplate = null)
    {
        _spec = spec;
        _chat = chatTemplate;
    }

    public IReadOnlyList<string> Choices(TaskDocument doc)
    {
        if (_spec.ChoiceTemplates is { } templates) return templates.Select(doc.Render).ToList();
        return doc.GetList(_spec.DocToChoice!);
    }

    public int Gold(TaskDocument doc, int choiceCount)
    {
        string value = doc.GetString(_spec.GoldField!);
        int gold;
        if (_spec.GoldLabels is { } labels)
        {
            gold = doc.GetList(labels).ToList().IndexOf(value);
            if (gold < 0) throw new QuantSharpException($"{doc.Origin}: gold '{value}' is not among {labels}.");
        }
        else if (_spec.GoldMap is { } map)
        {
            if (!map.TryGetValue(value, out gold)) throw new QuantSharpException($"{doc.Origin}: gold '{value}' is not a key of gold_map.");
        }
        else if (!int.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out gold))
        {
            throw new QuantSharpException($"{doc.Origin}: gold field '{_spec.GoldField}' = '{value}' is not an index.");
        }
        if (gold < 0 || gold >= choiceCount) throw new QuantSharpException($"{doc.Origin}: gold index {gold} is outside the {choiceCount} choices.");
        return gold;
    }

    /// <summary>The text a document contributes before its answer (for partial choice: the gold context).</summary>
    private string Text(TaskDocument doc) => _spec.Kind switch
    {
        TaskKind.PartialChoice => Choices(doc)[Gold(doc, Choices(doc).Count)],
        TaskKind.LastWord => SplitLastWord(doc.Render(_spec.DocToText), doc).Context,
        _ => doc.Render(_spec.DocToText),
    };

    /// <summary>The answer a few-shot example shows (for choice tasks the gold choice).</summary>
    private string Target(TaskDocument doc) => _spec.Kind switch
    {
        TaskKind.MultipleChoice => Choices(doc)[Gold(doc, Choices(doc).Count)],
        TaskKind.LastWord => SplitLastWord(doc.Render(_spec.DocToText), doc).Word,
        _ => doc.Render(_spec.DocToTarget!),
    };

    public string FewShotPrefix(IReadOnlyList<TaskDocument> examples)
    {
        var sb = new System.Text.StringBuilder(_spec.Description);
        foreach (var ex in examples)
            sb.Append(Text(ex)).Append(_spec.TargetDelimiter).Append(Target(ex)).Append(_spec.FewShotDelimiter);
        return sb.ToString();
    }

    private string Wrap(string prompt) => _chat is null ? prompt : _chat(prompt);

    public DocPrompt Build(TaskDocument doc, IReadOnlyList<TaskDocument> examples)
    {
        string prefix = FewShotPrefix(examples);
        string delim = _spec.TargetDelimiter;
        switch (_spec.Kind)
        {
            case TaskKind.MultipleChoice:
            {
                var choices = Choices(doc);
                string context = Wrap(prefix + doc.Render(_spec.DocToText));
                return new DocPrompt(doc, choices.Select(c => new LoglikelihoodRequest(context, delim + c)).ToList(),
                    Gold(doc, choices.Count), choices);
            }
            case TaskKind.PartialChoice:
            {
                var contexts = Choices(doc);
                string continuation = delim + doc.Render(_spec.DocToTarget!);
                return new DocPrompt(doc, contexts.Select(c => new LoglikelihoodRequest(Wrap(prefix + c), continuation)).ToList(),
                    Gold(doc, contexts.Count), contexts);
            }
            case TaskKind.LastWord:
            {
                var (context, word) = SplitLastWord(doc.Render(_spec.DocToText), doc);
                return new DocPrompt(doc, [new LoglikelihoodRequest(Wrap(prefix + context), delim + word)], 0, [word]);
            }
            default:
                return new DocPrompt(doc, [], 0, [], Wrap(prefix + doc.Render(_spec.DocToText)), doc.Render(_spec.DocToTarget!));
        }
    }

    /// <summary>LAMBADA's split: everything before the last space, and the last word.</summary>
    public static (string Context, string Word) SplitLastWord(string text, TaskDocument doc)
    {
        text = text.TrimEnd();
        int space = text.LastIndexOf(' ');
        if (space <= 0) throw new QuantSharpException($"{doc.Origin}: a last-word task needs a passage of at least two words.");
        return (text[..space], text[(space + 1)..]);
    }
}
