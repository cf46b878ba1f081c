using static TorchSharp.torch;

namespace QuantSharp.Tests.Export.Gguf;

internal static class TensorEquality
{
    /// <summary>Same shape and bit-identical values (TorchSharp's Tensor.equal is elementwise).</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }
}
