using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Quantization;

/// <summary>Wall time per phase, synchronising the GPU so asynchronous work is charged to the right phase.</summary>
internal sealed class PhaseClock(Device device)
{
    public Dictionary<string, double> Seconds { get; } = new();

    public T Time<T>(string phase, Func<T> work)
    {
        var w = Stopwatch.StartNew();
        T r = work();
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        Seconds[phase] = Seconds.GetValueOrDefault(phase) + w.Elapsed.TotalSeconds;
        return r;
    }
}
