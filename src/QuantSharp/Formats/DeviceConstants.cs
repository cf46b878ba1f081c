using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Formats;

/// <summary>
/// Small constant lookup tables (powers of two, decode tables) kept once per device. They are built in C# with
/// exact arithmetic and then only gathered from, so that every device (CPU, CUDA with flush-to-zero math) sees
/// bit-identical values.
/// </summary>
internal static class DeviceConstants
{
    private static readonly ConcurrentDictionary<(string Key, string Device), Tensor> Cache = new();

    /// <summary>The float32 table named <paramref name="key"/> on <paramref name="device"/>, built once by <paramref name="build"/>.</summary>
    public static Tensor Get(string key, Device device, Func<float[]> build) =>
        Cache.GetOrAdd((key, device.ToString()), k =>
        {
            // Created outside any caller's dispose scope: these live for the process.
            using var scope = NewDisposeScope();
            Tensor t = tensor(build(), dtype: ScalarType.Float32, device: device);
            return t.DetachFromDisposeScope();
        });
}
