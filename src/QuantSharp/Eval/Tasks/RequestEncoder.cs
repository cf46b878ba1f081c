using QuantSharp.IO.Tokenization;

namespace QuantSharp.Eval.Tasks;

/// <summary>Token ids of a request: the context and the continuation that is scored after it.</summary>
public sealed record EncodedRequest(int[] Context, int[] Continuation);

/// <summary>
/// lm-eval's context/continuation split: trailing spaces of the context move to the front of the continuation, the
/// whole string and the context are encoded separately (no special tokens), and the continuation is what the whole
/// string has beyond the context's length, so a token spanning the boundary belongs to the continuation. An empty
/// context becomes one prefix token (BOS, else EOS) so the first continuation token has something to condition on.
/// </summary>
public sealed class RequestEncoder
{
    private readonly BpeTokenizer _tokenizer;
    private readonly int _prefixToken;
    // The choices of one question share their context: its encoding is kept for the next request.
    private string? _lastContext;
    private int[] _lastContextIds = [];

    public RequestEncoder(BpeTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        _prefixToken = tokenizer.BosTokenId ?? tokenizer.EosTokenId
            ?? throw new QuantSharpException($"{tokenizer.SourcePath}: the tokenizer has neither a BOS nor an EOS token.");
    }

    public int[] Encode(string text) => _tokenizer.Encode(text, addSpecialTokens: false);

    public EncodedRequest Encode(LoglikelihoodRequest request)
    {
        string context = request.Context, continuation = request.Continuation;
        if (context.Length == 0) return new EncodedRequest([_prefixToken], Encode(continuation));
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        int[] whole = Encode(context + continuation);
        if (context != _lastContext)
        {
            _lastContextIds = Encode(context);
            _lastContext = context;
        }
        int[] ctx = _lastContextIds;
        if (whole.Length <= ctx.Length)
            throw new QuantSharpException($"the continuation \"{request.Continuation}\" encodes to no tokens after its context.");
        return new EncodedRequest(ctx, whole[ctx.Length..]);
    }
}
