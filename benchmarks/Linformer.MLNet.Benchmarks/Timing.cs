using System.Diagnostics;

namespace Linformer.MLNet.Benchmarks;

/// <summary>Wall-clock samples of one benchmark case, in milliseconds.</summary>
internal sealed record Timing(IReadOnlyList<double> SamplesMs)
{
    public double MedianMs => Median(SamplesMs);
    public double MinMs => SamplesMs.Min();
    public double MaxMs => SamplesMs.Max();
    public int Repetitions => SamplesMs.Count;

    /// <summary>The <paramref name="q"/>-quantile of the samples (nearest rank), e.g. 0.95 for the 95th percentile.</summary>
    public double Percentile(double q)
    {
        var sorted = SamplesMs.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
    }
}

/// <summary>How many times a case runs: warm-ups, then repetitions until a time budget is spent.</summary>
internal sealed record RepetitionPolicy(int Warmups, int MinRepetitions, int MaxRepetitions, double SecondsPerCase)
{
    /// <summary>Repetitions that fit the budget for an iteration of <paramref name="iterationMs"/>, within [min, max].</summary>
    public int RepetitionsFor(double iterationMs) => iterationMs <= 0
        ? Math.Max(MinRepetitions, MaxRepetitions)
        : (int)Math.Clamp(SecondsPerCase * 1000 / iterationMs, MinRepetitions, Math.Max(MinRepetitions, MaxRepetitions));
}

/// <summary>
/// One case (a layer model in one mode at one N, a part of the profile, a side of an ML.NET comparison) measured in
/// steps, so that several cases can take turns: <see cref="Prepare"/> runs the untimed warm-ups (first-call costs: MKL
/// buffers, oneDNN primitives, gradient buffers) and (unless told not to) the untimed iteration that measures peak
/// memory, and fixes the number of repetitions from the budget; <see cref="RunOnce"/> runs one timed repetition. Every
/// iteration ends by waiting for the device (<see cref="BenchDevice.Synchronize"/>).
/// </summary>
internal sealed class InterleavedCase(Action iteration, Action? beforeEach, RepetitionPolicy policy, int threads, bool measureMemory = true)
{
    // A slow case is warm after one iteration; more would only cost time.
    private const double SlowIterationMs = 2000;

    private readonly List<double> samples = [];
    private TimeSpan cpu;

    public int TargetRepetitions { get; private set; }
    public long? PeakBytes { get; private set; }

    public void Prepare()
    {
        var watch = new Stopwatch();
        double lastMs = 0;
        for (int i = 0; i < policy.Warmups; i++)
        {
            beforeEach?.Invoke();
            watch.Restart();
            iteration();
            BenchDevice.Synchronize();
            lastMs = watch.Elapsed.TotalMilliseconds;
            if (lastMs > SlowIterationMs) break;
        }
        if (measureMemory)
        {
            beforeEach?.Invoke();
            PeakBytes = PeakMemory.Measure(iteration);
        }
        TargetRepetitions = policy.RepetitionsFor(lastMs);
    }

    public void RunOnce()
    {
        beforeEach?.Invoke();
        var cpuBefore = Environment.CpuUsage.TotalTime;
        long start = Stopwatch.GetTimestamp();
        iteration();
        BenchDevice.Synchronize();
        samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        cpu += Environment.CpuUsage.TotalTime - cpuBefore;
    }

    public Timing Timing => new(samples.ToArray());

    /// <summary>
    /// Process CPU time over the timed repetitions ÷ (their wall time × libtorch threads): about 1 when the case had
    /// the cores to itself, lower when other processes competed for them.
    /// </summary>
    public double CpuUtilisation => cpu.TotalMilliseconds / (samples.Sum() * Math.Max(1, threads));
}

/// <summary>The measurement loops: a plain Stopwatch harness, single-threaded on the .NET side (libtorch uses its own intra-op threads).</summary>
internal static class Harness
{
    /// <summary>Rounds the timed repetitions of a group of cases are split into, unless a caller gives its own.</summary>
    public const int Rounds = 3;

    /// <summary>
    /// Measures several cases in turns: each is prepared (warm-ups, memory), then the timed repetitions are split
    /// into <paramref name="rounds"/> rounds, and in each round every case runs its share back to back, in reverse
    /// order every other round (A B, B A, …). A slow phase of the machine (a neighbour on the host, a frequency change)
    /// thus falls on every case alike instead of on whichever case happened to run then, while consecutive repetitions
    /// of one case still find its memory warm, as repeated calls of one model in an application do. Cases with as
    /// many repetitions as rounds give paired samples: sample i of each case comes from round i.
    /// </summary>
    /// <param name="cases">The cases, in the order they take turns.</param>
    /// <param name="beforeCase">Called before each case is prepared (waiting for free cores), or null.</param>
    /// <param name="beforeRound">Called before each case's share of a round (waiting for free cores), or null.</param>
    /// <param name="rounds">Rounds the timed repetitions are split into.</param>
    public static void RunInterleaved(IReadOnlyList<InterleavedCase> cases, Action? beforeCase, Action? beforeRound, int rounds = Rounds)
    {
        foreach (var c in cases)
        {
            beforeCase?.Invoke();
            c.Prepare();
        }
        for (int round = 0; round < rounds; round++)
            for (int j = 0; j < cases.Count; j++)
            {
                var c = cases[round % 2 == 0 ? j : cases.Count - 1 - j];
                int share = c.TargetRepetitions * (round + 1) / rounds - c.TargetRepetitions * round / rounds;
                if (share == 0) continue;
                beforeRound?.Invoke();
                for (int i = 0; i < share; i++) c.RunOnce();
            }
    }

    /// <summary>Times a single operation without the memory probe (the matmul reference and checks).</summary>
    public static Timing Time(Action iteration, RepetitionPolicy policy)
    {
        var c = new InterleavedCase(iteration, null, policy, 1, measureMemory: false);
        RunInterleaved([c], null, null);
        return c.Timing;
    }

    /// <summary>
    /// A side of a paired comparison (engines, ML.NET against the raw network, fp32 against bf16): <paramref name="warmups"/>
    /// untimed calls, then one timed call per round of <paramref name="samples"/> rounds, each right after an untimed call
    /// of the same side (and <paramref name="before"/>), so that every side is timed warm, as repeated calls in an
    /// application are, whichever side ran before it. What a call returns is kept alive.
    /// </summary>
    public static InterleavedCase Side(Func<double> call, int warmups, int samples, Action? before = null)
        => new(() => GC.KeepAlive(call()), () => { before?.Invoke(); GC.KeepAlive(call()); },
            new RepetitionPolicy(warmups, samples, samples, 0), 1, measureMemory: false);
}

/// <summary>One side of a <see cref="Comparison"/>: its samples (one per round) and how far its output is from the first side's.</summary>
internal sealed record SideResult(string Name, Timing Timing, double MaxAbsDifference = 0, double RelativeDifference = 0);

/// <summary>
/// Sides measured in the same rounds (<see cref="Harness.Side"/>): sample i of every side comes from round i.
/// <see cref="Items"/> is the rows or sequences one sample processes.
/// </summary>
internal sealed record Comparison(string Id, MlNetModel? Model, int SequenceLength, double Items, IReadOnlyList<SideResult> Sides)
{
    /// <summary>The load averages (1/5/15 min) before and after the comparison: how busy the machine was.</summary>
    public (string Before, string After) Load { get; init; }

    public SideResult? Find(string side) => Sides.FirstOrDefault(s => s.Name == side);
    public SideResult this[string side] => Find(side) ?? throw new KeyNotFoundException($"{Id} has no side '{side}'.");

    /// <summary>Items per second of <paramref name="side"/> (its median sample).</summary>
    public double Rate(string side) => Items / (this[side].Timing.MedianMs * 1e-3);

    /// <summary>How much faster <paramref name="side"/> ran than <paramref name="baseline"/> in each round (baseline ms ÷ side ms).</summary>
    public IReadOnlyList<double> Ratios(string side, string baseline)
        => this[baseline].Timing.SamplesMs.Zip(this[side].Timing.SamplesMs, (b, s) => b / s).ToList();

    /// <summary>The median of the per-round speed ratios; NaN when either side was not measured.</summary>
    public double Speed(string side, string baseline) => Find(side) is null || Find(baseline) is null ? double.NaN : Timing.Median(Ratios(side, baseline));

    /// <summary>The largest absolute and the relative L2 difference of <paramref name="actual"/> from <paramref name="reference"/>.</summary>
    public static (double MaxAbs, double Relative) Difference(float[] reference, float[] actual)
    {
        if (reference.Length != actual.Length) throw new InvalidOperationException($"Outputs differ in length: {reference.Length} and {actual.Length}.");
        double max = 0, diff = 0, norm = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = actual[i] - (double)reference[i];
            (max, diff, norm) = (Math.Max(max, Math.Abs(d)), diff + d * d, norm + reference[i] * (double)reference[i]);
        }
        return double.IsFinite(max) ? (max, Math.Sqrt(diff / Math.Max(norm, double.Epsilon))) : throw new InvalidOperationException("An output is not finite.");
    }
}
