using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// The device the run measures on (<c>--device cpu|cuda[:i]</c>). CUDA needs a CUDA build of libtorch that TorchSharp can
/// load: this project references the CPU runtime (<c>TorchSharp-cpu</c>) unless built with <c>-p:TorchSharpRuntime=cuda-linux</c>
/// (or <c>cuda-windows</c>), or <c>--libtorch DIR</c> names a libtorch folder whose libraries are loaded first.
/// </summary>
internal static class BenchDevice
{
    public static Device Device { get; private set; } = CPU;
    public static bool IsCuda => Device.type == DeviceType.CUDA;

    /// <summary>The device's name for the log and the tables: "CPU" or "CUDA device 0".</summary>
    public static string Describe => IsCuda ? $"CUDA device {Math.Max(0, Device.index)}" : "CPU";

    /// <summary>
    /// Selects the device; returns an error message (and leaves the CPU selected) when it cannot be used.
    /// </summary>
    public static string? Select(string name, string? libtorchDirectory)
    {
        if (libtorchDirectory is not null)
        {
            string? error = LoadLibTorch(libtorchDirectory);
            if (error is not null) return error;
        }
        var match = System.Text.RegularExpressions.Regex.Match(name.Trim().ToLowerInvariant(), @"^(cpu|cuda)(?::(\d{1,6}))?$");
        if (!match.Success || (match.Groups[1].Value == "cpu" && match.Groups[2].Success))
            return $"Unknown device '{name}': use cpu, cuda or cuda:<index>.";
        if (match.Groups[1].Value == "cpu") return null;
        int index = match.Groups[2].Success ? int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        bool available;
        try
        {
            available = torch.TryInitializeDeviceType(DeviceType.CUDA) && cuda.is_available();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or NotSupportedException or InvalidOperationException)
        {
            available = false;
        }
        if (!available)
            return "CUDA is not available to TorchSharp in this process. This build references the CPU runtime (TorchSharp-cpu); " +
                   "build or publish the benchmark with -p:TorchSharpRuntime=cuda-linux (TorchSharp-cuda-linux, on a machine with an NVIDIA " +
                   "driver), or pass --libtorch DIR with the lib folder of a CUDA build of libtorch 2.10 (see docs/benchmarks.md, section GPU).";
        if (index >= cuda.device_count())
            return $"CUDA device {index} does not exist: TorchSharp sees {cuda.device_count()} device(s).";
        Device = new Device(DeviceType.CUDA, index);
        return null;
    }

    /// <summary>Waits for the device's queued work (CUDA runs asynchronously); nothing on the CPU.</summary>
    public static void Synchronize()
    {
        if (IsCuda) cuda.synchronize(Device);
    }

    /// <summary>Loads libtorch's libraries from a folder (a libtorch download's <c>lib/</c>) before TorchSharp loads its own.</summary>
    private static string? LoadLibTorch(string directory)
    {
        if (!Directory.Exists(directory)) return $"--libtorch: folder not found: {directory}";
        string[] names = OperatingSystem.IsWindows()
            ? ["c10.dll", "torch_cpu.dll", "c10_cuda.dll", "torch_cuda.dll", "torch.dll"]
            : ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];
        int loaded = 0;
        foreach (var file in names.Select(n => Path.Combine(directory, n)).Where(File.Exists))
        {
            try { NativeLibrary.Load(file); loaded++; }
            catch (DllNotFoundException e) { return $"--libtorch: cannot load {file}: {e.Message}"; }
        }
        return loaded == 0 ? $"--libtorch: no libtorch library ({string.Join(", ", names)}) in {directory}" : null;
    }
}
