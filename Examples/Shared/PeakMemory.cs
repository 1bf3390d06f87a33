using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Linformer.MLNet.Examples;

/// <summary>
/// Peak resident memory of this process during a phase, above what it held when the phase started. On Linux the
/// kernel's own peak (<c>VmHWM</c> in /proc/self/status) is reset at the start (<c>echo 5 &gt; /proc/self/clear_refs</c>)
/// and read at the end; elsewhere the working set is sampled every 5 ms. Before the start the .NET heap is collected
/// and glibc returns its free pages to the kernel, so memory freed earlier cannot hide new allocations.
/// </summary>
public sealed class PeakMemory : IDisposable
{
    private readonly long start = Settle();
    private readonly bool kernelPeak = TryResetKernelPeak();
    private readonly Thread? sampler;
    private volatile bool stop;
    private long sampledPeak;

    /// <summary>Starts measuring.</summary>
    public PeakMemory()
    {
        sampledPeak = start;
        if (kernelPeak) return;
        sampler = new Thread(() =>
        {
            using var self = Process.GetCurrentProcess();
            while (!stop)
            {
                self.Refresh();
                sampledPeak = Math.Max(sampledPeak, self.WorkingSet64);
                Thread.Sleep(5);
            }
        }) { IsBackground = true };
        sampler.Start();
    }

    /// <summary>How the peak is measured, for the printed table.</summary>
    public static string Method => OperatingSystem.IsLinux()
        ? "peak resident set (VmHWM, reset per phase) minus the resident set at the phase's start"
        : "peak working set (sampled every 5 ms) minus the working set at the phase's start";

    /// <summary>Peak bytes above the start, so far.</summary>
    public long PeakAboveStart => Math.Max(0, (kernelPeak ? ReadStatus("VmHWM") ?? 0 : sampledPeak) - start);

    /// <summary>Stops the sampler, if any.</summary>
    public void Dispose()
    {
        stop = true;
        sampler?.Join();
    }

    private static long Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (OperatingSystem.IsLinux())
        {
            try { malloc_trim(0); }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { }   // not glibc
        }
        return CurrentBytes();
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    private static long CurrentBytes() => ReadStatus("VmRSS") ?? Process.GetCurrentProcess().WorkingSet64;

    private static bool TryResetKernelPeak()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return ReadStatus("VmHWM") is not null; }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; }
    }

    // "VmHWM:    123456 kB"
    private static long? ReadStatus(string field)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                    return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { }
        return null;
    }
}
