using System.Diagnostics;
using System.Globalization;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// The build machines are shared: other processes (builds, test runs) may take the cores at any time, and libtorch's
/// two intra-op threads then wait for each other at every parallel region, so a case can run ten times slower.
/// Before each case the run waits until the other processes leave the cores idle, judged from <c>/proc/stat</c>:
/// the busy share of all cores over half a second while this process sleeps.
/// </summary>
internal static class Quiet
{
    /// <summary>
    /// Waits until other processes use less than <paramref name="threshold"/> of the cores, for at most
    /// <paramref name="maxSeconds"/>, and says in the log how long it waited or that it measured anyway.
    /// Returns the seconds spent.
    /// </summary>
    public static double Wait(double maxSeconds, double threshold, TextWriter log)
    {
        if (maxSeconds <= 0) return 0;
        var clock = Stopwatch.StartNew();
        double? busy = OthersBusy();
        if (busy is null || busy < threshold) return clock.Elapsed.TotalSeconds;
        log.WriteLine($"    waiting for the cores: other processes use {busy * 100:F0}% of them");
        while (busy >= threshold && clock.Elapsed.TotalSeconds < maxSeconds)
        {
            Thread.Sleep(TimeSpan.FromSeconds(2));
            busy = OthersBusy();
        }
        log.WriteLine(busy is null || busy < threshold
            ? $"    cores free after {clock.Elapsed.TotalSeconds:F0} s"
            : $"    still busy ({busy * 100:F0}%) after {clock.Elapsed.TotalSeconds:F0} s; measuring anyway");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Share of all cores that other processes kept busy during half a second, or null where unknown.</summary>
    private static double? OthersBusy()
    {
        const double window = 0.5;
        var before = ReadCpuTimes();
        var ownBefore = Environment.CpuUsage.TotalTime;
        Thread.Sleep(TimeSpan.FromSeconds(window));
        var after = ReadCpuTimes();
        double own = (Environment.CpuUsage.TotalTime - ownBefore).TotalSeconds / (window * Environment.ProcessorCount);
        if (before is null || after is null || after.Value.Total <= before.Value.Total) return null;
        double total = after.Value.Total - before.Value.Total, idle = after.Value.Idle - before.Value.Idle;
        return Math.Clamp((total - idle) / total - own, 0, 1);   // this process's own share of the cores left out
    }

    // First line of /proc/stat: "cpu  user nice system idle iowait irq softirq steal guest guest_nice" (jiffies).
    private static (double Total, double Idle)? ReadCpuTimes()
    {
        try
        {
            var v = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
                .Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            return (v.Sum(), v[3] + v[4]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }
}
