using System.Diagnostics;
using System.Globalization;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// The build machines are shared: other processes (builds, test runs) may take the cores at any time, and libtorch's
/// two intra-op threads then wait for each other at every parallel region, so a case can run ten times slower.
/// Before each case the run waits until the other processes leave the cores idle, judged from <c>/proc/stat</c>:
/// the busy share of all cores over a short window while this process sleeps.
/// </summary>
internal static class Quiet
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(500);

    /// <summary>Seconds of waiting left for the whole run; once spent, cases run without waiting.</summary>
    public static double BudgetSeconds { get; set; } = double.PositiveInfinity;

    /// <summary>Share of all cores that other processes kept busy during a short window, or null where unknown.</summary>
    public static double? OthersBusy()
    {
        var before = ReadCpuTimes();
        if (before is null) return null;
        var ownBefore = Environment.CpuUsage.TotalTime;
        Thread.Sleep(Window);
        var after = ReadCpuTimes();
        var own = Environment.CpuUsage.TotalTime - ownBefore;
        if (after is null) return null;
        double total = after.Value.Total - before.Value.Total;
        double idle = after.Value.Idle - before.Value.Idle;
        if (total <= 0) return null;
        // Jiffies: the total over the window is cores × window; this process's own share is subtracted.
        double ownShare = own.TotalSeconds / (Window.TotalSeconds * Environment.ProcessorCount);
        return Math.Clamp((total - idle) / total - ownShare, 0, 1);
    }

    /// <summary>
    /// Waits until other processes use less than <paramref name="threshold"/> of the cores, for at most
    /// <paramref name="maxSeconds"/>; returns the seconds waited (or −1 when the limit was reached).
    /// </summary>
    public static double WaitForQuiet(double maxSeconds, double threshold, TextWriter log)
    {
        maxSeconds = Math.Min(maxSeconds, BudgetSeconds);
        if (maxSeconds <= 0) return 0;
        var clock = Stopwatch.StartNew();
        try
        {
            double? busy = OthersBusy();
            if (busy is null || busy < threshold) return 0;
            log.WriteLine($"    waiting for the cores: other processes use {busy * 100:F0}% of them");
            while (clock.Elapsed.TotalSeconds < maxSeconds)
            {
                Thread.Sleep(TimeSpan.FromSeconds(2));
                busy = OthersBusy();
                if (busy is null || busy < threshold)
                {
                    log.WriteLine($"    cores free after {clock.Elapsed.TotalSeconds:F0} s");
                    return clock.Elapsed.TotalSeconds;
                }
            }
            log.WriteLine($"    still busy ({busy * 100:F0}%) after {clock.Elapsed.TotalSeconds:F0} s; measuring anyway");
            return -1;
        }
        finally
        {
            BudgetSeconds -= clock.Elapsed.TotalSeconds;
        }
    }

    // First line of /proc/stat: "cpu  user nice system idle iowait irq softirq steal guest guest_nice" (jiffies).
    private static (double Total, double Idle)? ReadCpuTimes()
    {
        try
        {
            var line = File.ReadLines("/proc/stat").First();
            var v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
                .Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            return (v.Sum(), v[3] + v[4]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }
}
