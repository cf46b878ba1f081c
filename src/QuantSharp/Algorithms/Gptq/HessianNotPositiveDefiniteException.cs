namespace QuantSharp.Algorithms.Gptq;

/// <summary>
/// A layer's dampened Hessian failed to factorise even after every retry with more dampening. A type of its own so the
/// pipeline can fall back to RTN for that layer when the user allowed it (--allow-rtn-fallback), and only then.
/// </summary>
public sealed class HessianNotPositiveDefiniteException(string message) : QuantSharpException(message);
