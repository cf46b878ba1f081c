using static TorchSharp.torch;

namespace QuantSharp.Backend;

/// <summary>Device identity by type and index ("cuda" and "cuda:0" are the same device).</summary>
public static class Devices
{
    public static bool Same(Device a, Device b) =>
        a.type == b.type && Math.Max(0, (int)a.index) == Math.Max(0, (int)b.index);
}
