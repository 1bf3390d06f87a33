using System.Diagnostics;

namespace Linformer.MLNet.Benchmarks;

/// <summary>Wall-clock samples of one benchmark case, in milliseconds.</summary>
internal sealed record Timing(IReadOnlyList<double> SamplesMs)
{
    public double MedianMs => Median(SamplesMs);
    public double MinMs => SamplesMs.Min();
    public double MaxMs => SamplesMs.Max();
    public int Repetitions => SamplesMs.Count;

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return double.NaN;
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
    }
}

/// <summary>How many times a case runs: warm-ups, then repetitions until a time budget is spent.</summary>
internal sealed record RepetitionPolicy(int Warmups, int MinRepetitions, int MaxRepetitions, double SecondsPerCase);

/// <summary>
/// The measurement loop: a plain Stopwatch harness, single-threaded on the .NET side (libtorch uses its own
/// intra-op threads). Per case: warm-up iterations (untimed: first-call costs such as MKL buffers, oneDNN
/// primitives and gradient buffers), one untimed iteration that measures peak memory, then timed repetitions;
/// the number of repetitions fits the case's time budget, bounded below and above. The median is reported.
/// </summary>
internal static class Harness
{
    /// <param name="Timing">The timed repetitions.</param>
    /// <param name="PeakBytes">Peak extra resident memory of one iteration (see <see cref="PeakMemory"/>), or null.</param>
    /// <param name="CpuUtilisation">
    /// Process CPU time over the timed repetitions divided by (wall time × libtorch threads): about 1 when the
    /// case had the cores to itself, lower when other processes competed for them.
    /// </param>
    public sealed record Measurement(Timing Timing, long? PeakBytes, double CpuUtilisation);

    /// <param name="iteration">One iteration; it must free everything it allocates (a dispose scope).</param>
    /// <param name="beforeEach">Untimed preparation before every iteration (e.g. dropping gradients), or null.</param>
    /// <param name="policy">Warm-ups, repetitions and time budget.</param>
    /// <param name="threads">Threads libtorch computes with (for <see cref="Measurement.CpuUtilisation"/>).</param>
    public static Measurement Run(Action iteration, Action? beforeEach, RepetitionPolicy policy, int threads)
    {
        var watch = new Stopwatch();
        double lastMs = 0;
        for (int i = 0; i < Math.Max(1, policy.Warmups); i++)
        {
            beforeEach?.Invoke();
            watch.Restart();
            iteration();
            lastMs = watch.Elapsed.TotalMilliseconds;
            if (lastMs > SlowIterationMs) break;   // a slow case is warm after one iteration; more would only cost time
        }

        beforeEach?.Invoke();
        long? peak = PeakMemory.Measure(iteration);

        // Repetitions that fit the budget, judged by the last warm-up; at least MinRepetitions.
        int repetitions = lastMs <= 0
            ? policy.MaxRepetitions
            : (int)Math.Clamp(policy.SecondsPerCase * 1000 / lastMs, policy.MinRepetitions, policy.MaxRepetitions);
        var samples = new List<double>(repetitions);
        var cpuBefore = Environment.CpuUsage.TotalTime;
        for (int i = 0; i < repetitions; i++)
        {
            beforeEach?.Invoke();
            watch.Restart();
            iteration();
            samples.Add(watch.Elapsed.TotalMilliseconds);
        }
        double cpuMs = (Environment.CpuUsage.TotalTime - cpuBefore).TotalMilliseconds;
        return new Measurement(new Timing(samples), peak, cpuMs / (samples.Sum() * Math.Max(1, threads)));
    }

    private const double SlowIterationMs = 2000;

    /// <summary>Times a single operation without the memory probe (the profile's parts).</summary>
    public static Timing Time(Action iteration, RepetitionPolicy policy)
    {
        var watch = new Stopwatch();
        double lastMs = 0;
        for (int i = 0; i < Math.Max(1, policy.Warmups); i++)
        {
            watch.Restart();
            iteration();
            lastMs = watch.Elapsed.TotalMilliseconds;
        }
        int repetitions = lastMs <= 0
            ? policy.MaxRepetitions
            : (int)Math.Clamp(policy.SecondsPerCase * 1000 / lastMs, policy.MinRepetitions, policy.MaxRepetitions);
        var samples = new List<double>(repetitions);
        for (int i = 0; i < repetitions; i++)
        {
            watch.Restart();
            iteration();
            samples.Add(watch.Elapsed.TotalMilliseconds);
        }
        return new Timing(samples);
    }
}
