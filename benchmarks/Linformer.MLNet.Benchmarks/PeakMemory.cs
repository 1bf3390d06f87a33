using System.Runtime.InteropServices;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// Peak native memory of one benchmark iteration, as the rise of the process's resident-set high-water mark.
/// TorchSharp exposes no allocator statistics for the CPU (libtorch's CPU allocator keeps none unless its
/// profiler is on, and TorchSharp does not bind that), so the kernel's own peak is used instead:
/// <list type="number">
/// <item>collect the .NET heap and call glibc's <c>malloc_trim(0)</c>, which hands every free heap page of every
/// malloc arena back to the kernel, so that memory freed by earlier iterations cannot hide new allocations;</item>
/// <item>write <c>5</c> to <c>/proc/self/clear_refs</c>, which resets <c>VmHWM</c> (peak RSS) to the current RSS;</item>
/// <item>run the iteration and read <c>VmHWM</c>: the peak minus the RSS before is the peak extra memory.</item>
/// </list>
/// Exact to the page, not sampled, so short-lived peaks (one attention matrix alive for a millisecond) count.
/// Linux only; elsewhere <see cref="IsSupported"/> is false and no memory is reported.
/// </summary>
internal static partial class PeakMemory
{
    private const string StatusPath = "/proc/self/status";
    private const string ClearRefsPath = "/proc/self/clear_refs";

    private static readonly Lazy<bool> supported = new(Probe);

    /// <summary>True where the peak can be reset and read (Linux with a writable <c>clear_refs</c>).</summary>
    public static bool IsSupported => supported.Value;

    /// <summary>Runs <paramref name="action"/> once and returns its peak resident memory above the trimmed baseline, in bytes.</summary>
    public static long? Measure(Action action)
    {
        if (!IsSupported)
        {
            action();
            return null;
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        malloc_trim(0);
        File.WriteAllText(ClearRefsPath, "5");
        long before = ReadStatusBytes("VmRSS");
        action();
        long peak = ReadStatusBytes("VmHWM");
        return Math.Max(0, peak - before);
    }

    /// <summary><c>VmHWM</c>: the process's peak resident memory since the last reset (or start), in bytes.</summary>
    public static long HighWaterMarkBytes() => ReadStatusBytes("VmHWM");

    /// <summary>Memory the kernel reports as available to new allocations (<c>MemAvailable</c>), or null.</summary>
    public static long? AvailableBytes()
        => File.Exists("/proc/meminfo") ? File.ReadLines("/proc/meminfo").Where(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal))
            .Select(ParseKilobytes).Cast<long?>().FirstOrDefault() : null;

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            File.WriteAllText(ClearRefsPath, "5");
            _ = ReadStatusBytes("VmHWM");
            malloc_trim(0);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException or FormatException)
        {
            return false;
        }
    }

    private static long ReadStatusBytes(string field)
    {
        foreach (var line in File.ReadLines(StatusPath))
            if (line.StartsWith(field + ":", StringComparison.Ordinal)) return ParseKilobytes(line);
        throw new FormatException($"{StatusPath} has no {field} line.");
    }

    // "VmHWM:	  525608 kB"
    private static long ParseKilobytes(string line)
    {
        var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);
}
