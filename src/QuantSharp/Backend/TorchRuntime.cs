using System.Runtime.InteropServices;
using TorchSharp;

namespace QuantSharp.Backend;

/// <summary>
/// Loads the native libtorch before TorchSharp first touches it, and resolves device names.
/// With <c>QUANTSHARP_LIBTORCH</c> pointing at a folder of libtorch*.so (for example an installed PyTorch's
/// <c>torch/lib</c>), those libraries are loaded by absolute path first; the dynamic loader then satisfies
/// libLibTorchSharp.so's dependencies by soname from them, which is how CUDA works without TorchSharp's multi-GB
/// CUDA package. Without it, the CPU libtorch from the libtorch-cpu-linux-x64 package is used.
/// </summary>
public static class TorchRuntime
{
    public const string LibTorchVariable = "QUANTSHARP_LIBTORCH";

    // Load order matters only for readability of failures: each library's own DT_NEEDED entries are resolved by
    // its RPATH ($ORIGIN in PyTorch wheels).
    private static readonly string[] PreloadOrder =
    [
        "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so",
    ];

    private static readonly object Gate = new();
    private static bool _nativeLoaded;
    private static bool _cudaInitialized;
    private static string? _cudaFailure;

    /// <summary>The folder named by QUANTSHARP_LIBTORCH, or null.</summary>
    public static string? LibTorchFolder
    {
        get
        {
            string? dir = Environment.GetEnvironmentVariable(LibTorchVariable);
            return string.IsNullOrWhiteSpace(dir) ? null : dir;
        }
    }

    /// <summary>Loads QUANTSHARP_LIBTORCH's libraries if set; idempotent. Call before any TorchSharp use.</summary>
    public static void EnsureNativeLoaded()
    {
        lock (Gate)
        {
            if (_nativeLoaded) return;
            CpuHeapSettings.Apply();
            string? dir = LibTorchFolder;
            if (dir is not null)
            {
                if (!Directory.Exists(dir))
                    throw new QuantSharpException($"{LibTorchVariable}={dir}: no such folder (it should hold libtorch*.so, e.g. an installed PyTorch's torch/lib).");
                string core = Path.Combine(dir, "libtorch_cpu.so");
                if (!File.Exists(core))
                    throw new QuantSharpException($"{LibTorchVariable}={dir}: libtorch_cpu.so not found there.");
                foreach (string lib in PreloadOrder)
                {
                    string path = Path.Combine(dir, lib);
                    if (!File.Exists(path)) continue;
                    try { NativeLibrary.Load(path); }
                    catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
                    {
                        throw new QuantSharpException($"{LibTorchVariable}: could not load {path}: {e.Message}", e);
                    }
                }
            }
            _nativeLoaded = true;
        }
    }

    /// <summary>True when a CUDA device can be used (loads the CUDA backend on first call).</summary>
    public static bool CudaAvailable
    {
        get
        {
            TryInitializeCuda();
            return _cudaInitialized && torch.cuda.is_available();
        }
    }

    private static void TryInitializeCuda()
    {
        lock (Gate)
        {
            if (_cudaInitialized || _cudaFailure is not null) return;
            EnsureNativeLoaded();
            CudaAllocatorSettings.Apply();
            try
            {
                torch.InitializeDeviceType(DeviceType.CUDA);
                _cudaInitialized = true;
            }
            catch (Exception e)
            {
                _cudaFailure = e.Message.Split('\n')[0];
            }
        }
    }

    /// <summary>
    /// Resolves <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>. Asking for CUDA when it cannot be loaded is an
    /// error that says what was looked for.
    /// </summary>
    public static torch.Device ResolveDevice(string? spec)
    {
        EnsureNativeLoaded();
        string s = (spec ?? "auto").Trim().ToLowerInvariant();
        if (s == "cpu") return torch.CPU;
        if (s == "auto") return CudaAvailable ? torch.CUDA : torch.CPU;
        if (s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!CudaAvailable)
            {
                string why = _cudaFailure ?? "torch.cuda.is_available() is false";
                throw new QuantSharpException(
                    $"--device {spec}: CUDA is not available ({why}). QuantSharp looks for CUDA-enabled libtorch in the folder " +
                    $"named by {LibTorchVariable} (currently {(LibTorchFolder ?? "unset")}; e.g. the torch/lib folder of a PyTorch " +
                    "install with CUDA) or in TorchSharp's libtorch-cuda package; neither provided a usable GPU.");
            }
            return s == "cuda" ? torch.CUDA : new torch.Device(s);
        }
        throw new QuantSharpException($"--device {spec}: expected auto, cpu, cuda or cuda:N.");
    }
}
