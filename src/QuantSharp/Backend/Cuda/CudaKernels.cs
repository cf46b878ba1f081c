using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Backend.Cuda;

/// <summary>
/// Runs a few hand-written CUDA kernels next to libtorch: compiled at run time by NVRTC (the copy that ships with
/// PyTorch's CUDA wheels, found from QUANTSHARP_LIBTORCH, or the system's) and launched through the CUDA driver API on
/// the primary context and the legacy default stream, the stream libtorch's own kernels use here, so they are ordered
/// with them. Used where TorchSharp's one-launch-per-op makes a loop launch-bound (GPTQ's column loop). Entirely
/// optional: when NVRTC or the driver is missing, or QUANTSHARP_CUDA_KERNELS=0, <see cref="Available"/> is false and
/// callers keep their tensor-op path.
/// </summary>
internal static unsafe class CudaKernels
{
    public const string DisableVariable = "QUANTSHARP_CUDA_KERNELS";

    private static readonly object Gate = new();
    private static bool _loaded;
    private static string? _failure;
    private static readonly ConcurrentDictionary<(int Device, string Name), IntPtr> Functions = new();

    // CUDA driver API (libcuda.so.1, always present where a GPU is) and NVRTC, resolved once.
    private static delegate* unmanaged<uint, int> _cuInit;
    private static delegate* unmanaged<int*, int, int> _cuDeviceGet;
    private static delegate* unmanaged<int*, int, int, int> _cuDeviceGetAttribute;
    private static delegate* unmanaged<IntPtr*, int, int> _cuDevicePrimaryCtxRetain;
    private static delegate* unmanaged<IntPtr, int> _cuCtxSetCurrent;
    private static delegate* unmanaged<nuint*, nuint*, int> _cuMemGetInfo;
    private static delegate* unmanaged<IntPtr*, byte*, int> _cuModuleLoadData;
    private static delegate* unmanaged<IntPtr*, IntPtr, byte*, int> _cuModuleGetFunction;
    private static delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int> _cuLaunchKernel;
    private static delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int> _nvrtcCreateProgram;
    private static delegate* unmanaged<IntPtr, int, byte**, int> _nvrtcCompileProgram;
    private static delegate* unmanaged<IntPtr, nuint*, int> _nvrtcGetPTXSize;
    private static delegate* unmanaged<IntPtr, byte*, int> _nvrtcGetPTX;
    private static delegate* unmanaged<IntPtr, nuint*, int> _nvrtcGetProgramLogSize;
    private static delegate* unmanaged<IntPtr, byte*, int> _nvrtcGetProgramLog;
    private static delegate* unmanaged<IntPtr*, int> _nvrtcDestroyProgram;

    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr tensor);

    /// <summary>True when kernels can be compiled and launched on CUDA tensors.</summary>
    public static bool Available
    {
        get
        {
            EnsureLoaded();
            return _failure is null;
        }
    }

    /// <summary>Why <see cref="Available"/> is false (null when it is true).</summary>
    public static string? Failure
    {
        get
        {
            EnsureLoaded();
            return _failure;
        }
    }

    /// <summary>The device address of a contiguous CUDA tensor's first element.</summary>
    public static IntPtr Pointer(Tensor t)
    {
        if (t.device.type != DeviceType.CUDA) throw new ArgumentException("not a CUDA tensor", nameof(t));
        if (!t.is_contiguous()) throw new ArgumentException("tensor must be contiguous", nameof(t));
        return THSTensor_data(t.Handle);
    }

    private static readonly ConcurrentDictionary<string, string> CompileFailures = new();

    /// <summary>
    /// True when kernel <paramref name="name"/> is compiled (or compiles now) for the device. A kernel that fails to
    /// compile is reported once on stderr and then reported unavailable, so callers fall back to their tensor path
    /// instead of failing a run.
    /// </summary>
    public static bool Ready(int device, string name, string source)
    {
        if (!Available || CompileFailures.ContainsKey(name)) return false;
        try
        {
            Functions.GetOrAdd((device, name), key => Compile(key.Device, key.Name, source));
            return true;
        }
        catch (QuantSharpException e)
        {
            if (CompileFailures.TryAdd(name, e.Message))
                Console.Error.WriteLine($"warning: CUDA kernel '{name}' is unavailable ({e.Message}); using tensor operations instead.");
            return false;
        }
    }

    /// <summary>
    /// Launches <paramref name="name"/> from <paramref name="source"/> (compiled once per device) with a 1-D grid.
    /// Each argument is an IntPtr (device pointer), int, long or float, passed by value in order.
    /// </summary>
    public static void Launch(int device, string name, string source, uint blocks, uint threads, params object[] args)
    {
        if (!Available) throw new InvalidOperationException("CUDA kernels are unavailable: " + _failure);
        IntPtr fn = Functions.GetOrAdd((device, name), key => Compile(key.Device, key.Name, source));
        // kernelParams is an array of pointers to each argument's value.
        IntPtr values = Marshal.AllocHGlobal(8 * args.Length);
        IntPtr pointers = Marshal.AllocHGlobal(IntPtr.Size * args.Length);
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                IntPtr slot = values + 8 * i;
                switch (args[i])
                {
                    case IntPtr p: Marshal.WriteIntPtr(slot, p); break;
                    case int v: Marshal.WriteInt32(slot, v); break;
                    case long l: Marshal.WriteInt64(slot, l); break;
                    case float f: Marshal.WriteInt32(slot, BitConverter.SingleToInt32Bits(f)); break;
                    default: throw new ArgumentException($"kernel argument {i} has unsupported type {args[i].GetType().Name}");
                }
                Marshal.WriteIntPtr(pointers + IntPtr.Size * i, slot);
            }
            Check(_cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, IntPtr.Zero, (void**)pointers, null), "cuLaunchKernel " + name);
        }
        finally
        {
            Marshal.FreeHGlobal(pointers);
            Marshal.FreeHGlobal(values);
        }
    }

    /// <summary>
    /// Bytes in use on the device (total − free): libtorch's caching allocator keeps what it reserved, so this is the
    /// high-water mark of the process's GPU memory so far (plus the CUDA context). Null when the driver is unavailable.
    /// </summary>
    public static long? DeviceMemoryInUse(int device)
    {
        if (!Available) return null;
        lock (Gate)
        {
            MakeCurrent(device);
            nuint free, total;
            return _cuMemGetInfo(&free, &total) == 0 ? (long)(total - free) : null;
        }
    }

    /// <summary>Free bytes on the device now (what a new run can still get), or null without the driver.</summary>
    public static long? DeviceMemoryFree(int device)
    {
        if (!Available) return null;
        lock (Gate)
        {
            MakeCurrent(device);
            nuint free, total;
            return _cuMemGetInfo(&free, &total) == 0 ? (long)free : null;
        }
    }

    private static int MakeCurrent(int device)
    {
        int dev;
        Check(_cuDeviceGet(&dev, device), "cuDeviceGet");
        IntPtr ctx;
        Check(_cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        Check(_cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        return dev;
    }

    private static IntPtr Compile(int device, string name, string source)
    {
        lock (Gate)
        {
            int dev = MakeCurrent(device), major, minor;
            Check(_cuDeviceGetAttribute(&major, 75, dev), "cuDeviceGetAttribute(major)");
            Check(_cuDeviceGetAttribute(&minor, 76, dev), "cuDeviceGetAttribute(minor)");

            byte[] ptx = CompileToPtx(source, name, $"--gpu-architecture=compute_{major}{minor}");
            IntPtr module, fn;
            fixed (byte* image = ptx) Check(_cuModuleLoadData(&module, image), "cuModuleLoadData");
            byte[] entry = Encoding.ASCII.GetBytes(name + "\0");
            fixed (byte* e = entry) Check(_cuModuleGetFunction(&fn, module, e), "cuModuleGetFunction " + name);
            return fn;
        }
    }

    private static byte[] CompileToPtx(string source, string name, string arch)
    {
        IntPtr prog;
        byte[] src = Encoding.UTF8.GetBytes(source + "\0"), file = Encoding.ASCII.GetBytes(name + ".cu\0");
        fixed (byte* s = src, f = file) CheckNvrtc(_nvrtcCreateProgram(&prog, s, f, 0, null, null), "nvrtcCreateProgram");
        try
        {
            // IEEE division and no contraction: the kernels reproduce libtorch's float32 element arithmetic.
            string[] options = [arch, "--fmad=false", "--prec-div=true", "--ftz=false"];
            byte[][] raw = options.Select(o => Encoding.ASCII.GetBytes(o + "\0")).ToArray();
            var handles = raw.Select(r => GCHandle.Alloc(r, GCHandleType.Pinned)).ToArray();
            try
            {
                byte** opts = stackalloc byte*[raw.Length];
                for (int i = 0; i < raw.Length; i++) opts[i] = (byte*)handles[i].AddrOfPinnedObject();
                int rc = _nvrtcCompileProgram(prog, raw.Length, opts);
                if (rc != 0) throw new QuantSharpException($"NVRTC could not compile kernel '{name}' (error {rc}): {Log(prog)}");
            }
            finally
            {
                foreach (var h in handles) h.Free();
            }
            nuint size;
            CheckNvrtc(_nvrtcGetPTXSize(prog, &size), "nvrtcGetPTXSize");
            var ptx = new byte[(int)size];
            fixed (byte* p = ptx) CheckNvrtc(_nvrtcGetPTX(prog, p), "nvrtcGetPTX");
            return ptx;
        }
        finally
        {
            _nvrtcDestroyProgram(&prog);
        }
    }

    private static string Log(IntPtr prog)
    {
        nuint size;
        if (_nvrtcGetProgramLogSize(prog, &size) != 0 || size == 0) return "(no log)";
        var log = new byte[(int)size];
        fixed (byte* l = log) _nvrtcGetProgramLog(prog, l);
        return Encoding.UTF8.GetString(log).TrimEnd('\0', '\n');
    }

    private static void Check(int result, string what)
    {
        if (result != 0) throw new QuantSharpException($"CUDA driver call {what} failed with CUresult {result}.");
    }

    private static void CheckNvrtc(int result, string what)
    {
        if (result != 0) throw new QuantSharpException($"NVRTC call {what} failed with nvrtcResult {result}.");
    }

    private static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            _loaded = true;
            if (Environment.GetEnvironmentVariable(DisableVariable) == "0")
            {
                _failure = $"{DisableVariable}=0";
                return;
            }
            if (!NativeLibrary.TryLoad("libcuda.so.1", out IntPtr cuda))
            {
                _failure = "libcuda.so.1 (the CUDA driver) not found";
                return;
            }
            IntPtr nvrtc = FindNvrtc();
            if (nvrtc == IntPtr.Zero)
            {
                _failure = "libnvrtc not found (looked next to QUANTSHARP_LIBTORCH's PyTorch under nvidia/*/lib and on the loader path)";
                return;
            }
            try
            {
                _cuInit = (delegate* unmanaged<uint, int>)NativeLibrary.GetExport(cuda, "cuInit");
                _cuDeviceGet = (delegate* unmanaged<int*, int, int>)NativeLibrary.GetExport(cuda, "cuDeviceGet");
                _cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)NativeLibrary.GetExport(cuda, "cuDeviceGetAttribute");
                _cuDevicePrimaryCtxRetain = (delegate* unmanaged<IntPtr*, int, int>)NativeLibrary.GetExport(cuda, "cuDevicePrimaryCtxRetain");
                _cuCtxSetCurrent = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(cuda, "cuCtxSetCurrent");
                _cuModuleLoadData = (delegate* unmanaged<IntPtr*, byte*, int>)NativeLibrary.GetExport(cuda, "cuModuleLoadData");
                _cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)NativeLibrary.GetExport(cuda, "cuMemGetInfo_v2");
                _cuModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)NativeLibrary.GetExport(cuda, "cuModuleGetFunction");
                _cuLaunchKernel = (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int>)
                    NativeLibrary.GetExport(cuda, "cuLaunchKernel");
                _nvrtcCreateProgram = (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)NativeLibrary.GetExport(nvrtc, "nvrtcCreateProgram");
                _nvrtcCompileProgram = (delegate* unmanaged<IntPtr, int, byte**, int>)NativeLibrary.GetExport(nvrtc, "nvrtcCompileProgram");
                _nvrtcGetPTXSize = (delegate* unmanaged<IntPtr, nuint*, int>)NativeLibrary.GetExport(nvrtc, "nvrtcGetPTXSize");
                _nvrtcGetPTX = (delegate* unmanaged<IntPtr, byte*, int>)NativeLibrary.GetExport(nvrtc, "nvrtcGetPTX");
                _nvrtcGetProgramLogSize = (delegate* unmanaged<IntPtr, nuint*, int>)NativeLibrary.GetExport(nvrtc, "nvrtcGetProgramLogSize");
                _nvrtcGetProgramLog = (delegate* unmanaged<IntPtr, byte*, int>)NativeLibrary.GetExport(nvrtc, "nvrtcGetProgramLog");
                _nvrtcDestroyProgram = (delegate* unmanaged<IntPtr*, int>)NativeLibrary.GetExport(nvrtc, "nvrtcDestroyProgram");
                int rc = _cuInit(0);
                if (rc != 0) _failure = $"cuInit failed with CUresult {rc}";
            }
            catch (EntryPointNotFoundException e)
            {
                _failure = e.Message;
            }
        }
    }

    /// <summary>PyTorch's CUDA wheels put NVRTC in site-packages/nvidia/&lt;pkg&gt;/lib; else the loader path.</summary>
    private static IntPtr FindNvrtc()
    {
        var candidates = new List<string>();
        if (TorchRuntime.LibTorchFolder is { } lib)
        {
            string? sitePackages = Directory.GetParent(Path.GetFullPath(lib))?.Parent?.FullName;
            string nvidia = sitePackages is null ? "" : Path.Combine(sitePackages, "nvidia");
            if (Directory.Exists(nvidia))
                candidates.AddRange(Directory.EnumerateFiles(nvidia, "libnvrtc.so*", SearchOption.AllDirectories)
                    .Where(f => !f.Contains("builtins", StringComparison.Ordinal)).Order());
            candidates.AddRange(Directory.EnumerateFiles(lib, "libnvrtc*.so*").Where(f => !f.Contains("builtins", StringComparison.Ordinal)));
        }
        candidates.AddRange(["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]);
        foreach (string c in candidates)
            if (NativeLibrary.TryLoad(c, out IntPtr h)) return h;
        return IntPtr.Zero;
    }
}
