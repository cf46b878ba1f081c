using System.Runtime.InteropServices;

namespace QuantSharp.Backend;

/// <summary>
/// Pins glibc's mmap threshold so that freed CPU tensors go back to the operating system. glibc starts by serving
/// blocks of 128 KiB and more with mmap, but raises that threshold (up to 32 MiB) each time such a block is freed; from
/// then on weight-sized temporaries (GPTQ's per-column work, the MSE observer's candidates, a batch's activations) come
/// from the heap arenas and stay resident after they are freed. Measured on micro-qwen3 (MR-GPTQ, CPU): the first
/// layer's solve lifted the resident set from 460 to 912 MiB with the default, to a 510 MiB peak with the threshold
/// pinned, which is what the tensors alive at once account for. The memory estimate models live tensors, so the peak
/// it is compared with must follow them. A user's own MALLOC_MMAP_THRESHOLD_ wins.
/// </summary>
internal static partial class CpuHeapSettings
{
    public const string Variable = "MALLOC_MMAP_THRESHOLD_";
    public const int ThresholdBytes = 128 * 1024;
    private const int MmapThresholdParameter = -3; // M_MMAP_THRESHOLD in glibc's malloc.h

    /// <summary>Applies the pinned threshold on Linux (glibc); does nothing elsewhere or when the variable is set.</summary>
    public static void Apply()
    {
        if (!OperatingSystem.IsLinux() || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable))) return;
        try { _ = MallOpt(MmapThresholdParameter, ThresholdBytes); }
        catch (DllNotFoundException) { }       // not glibc (e.g. musl): its allocator has no such threshold
        catch (EntryPointNotFoundException) { }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
