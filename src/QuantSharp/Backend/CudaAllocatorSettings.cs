using System.Runtime.InteropServices;

namespace QuantSharp.Backend;

/// <summary>
/// Chooses libtorch's CUDA caching-allocator settings before the first CUDA allocation. A layer-wise run allocates
/// tensors of very different sizes phase by phase (calibration activations, then [in, in] Hessian copies of up to 3 GB
/// for 28k-wide layers, then weight-sized work): with fixed segments the cache keeps each phase's blocks reserved and
/// the process's footprint becomes the sum of the phases' peaks (59 GiB for a 70B-shaped layer on an H200).
/// Expandable segments let freed memory serve the next phase's sizes, so the footprint follows the live peak.
/// TorchSharp exposes no empty_cache, so this is the lever we have. A user's own PYTORCH_CUDA_ALLOC_CONF wins.
/// </summary>
internal static partial class CudaAllocatorSettings
{
    public const string Variable = "PYTORCH_CUDA_ALLOC_CONF";
    public const string Default = "expandable_segments:True";

    /// <summary>Sets <see cref="Variable"/> in the native environment (libtorch reads it with getenv) unless set.</summary>
    public static void Apply()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable))) return;
        // .NET keeps its own copy of the environment on Linux: only libc's setenv reaches libtorch's getenv.
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) _ = SetEnv(Variable, Default, 0);
        Environment.SetEnvironmentVariable(Variable, Default);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
