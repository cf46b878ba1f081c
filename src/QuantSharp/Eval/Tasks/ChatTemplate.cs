namespace QuantSharp.Eval.Tasks;

public sealed class ChatTemplate
{
    public static ChatTemplate FromModelDirectory(string dir) => throw new QuantSharpException($"{dir}: chat templates are not supported yet.");
    public string UserTurn(string prompt) => prompt;
}
