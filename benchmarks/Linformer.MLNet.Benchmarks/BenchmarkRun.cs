using System.Diagnostics;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// Runs the selected cases in one process: the matmul reference, the layer cases (for each N, every model,
/// inference then a training step, so models are compared under the same machine conditions), the matmul again,
/// then the part-by-part profiles.
/// </summary>
internal static class BenchmarkRun
{
    public static BenchmarkResults Execute(RunProfile profile, CaseFilter filter, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        var results = new BenchmarkResults
        {
            Profile = profile,
            Filter = filter,
            Machine = MachineInfo.Read(),
            Models = ModelSpec.All(profile),
            Device = BenchDevice.Describe,
        };
        log.WriteLine($"profile {profile.Name}: C={profile.Channels}, H={profile.Heads}, FF={profile.FeedForward}, B={profile.Batch}, " +
                      $"N={string.Join(",", profile.SequenceLengths)}; {results.Machine.TorchThreads} libtorch threads; " +
                      $"load average {results.Machine.LoadAverageAtStart}");
        Quiet.BudgetSeconds = profile.QuietWaitBudgetSeconds;
        if (!PeakMemory.IsSupported) log.WriteLine("peak memory: not supported on this system (needs Linux /proc); memory columns stay empty");

        RunMatmul("start", profile, filter, results, log);
        RunLayers(profile, filter, results, log);
        RunMatmul("end", profile, filter, results, log);
        RunProfiles(profile, filter, results, log);
        MlNetBenchmarks.Run(profile, filter, results, log);

        results.LoadAverageAtEnd = MachineInfo.LoadAverage();
        results.Duration = clock.Elapsed;
        log.WriteLine($"done in {results.Duration.TotalMinutes:F1} min; load average {results.LoadAverageAtEnd}");
        return results;
    }

    private static void RunMatmul(string when, RunProfile profile, CaseFilter filter, BenchmarkResults results, TextWriter log)
    {
        int s = profile.MatmulSize;
        if (!filter.Matches($"matmul/{s}")) return;
        Quiet.WaitForQuiet(profile.QuietWaitSeconds, profile.QuietThreshold, log);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(1);
        var a = randn(s, s, device: BenchDevice.Device);
        var b = randn(s, s, device: BenchDevice.Device);
        var timing = Harness.Time(() => { using var t = NewDisposeScope(); mm(a, b); BenchDevice.Synchronize(); }, profile.Layer with { MinRepetitions = Math.Min(5, profile.Layer.MaxRepetitions) });
        var result = new MatmulResult(when, s, timing);
        results.Matmuls.Add(result);
        log.WriteLine($"matmul/{s} ({when}): {timing.MedianMs:F2} ms = {result.GflopPerSecond:F1} GFLOP/s");
    }

    private static void RunLayers(RunProfile profile, CaseFilter filter, BenchmarkResults results, TextWriter log)
    {
        long available = PeakMemory.AvailableBytes() ?? long.MaxValue;
        foreach (int n in profile.SequenceLengths)
        {
            var toRun = new List<(ModelSpec Model, Mode Mode)>();
            foreach (var model in results.Models)
                foreach (var mode in new[] { Mode.Inference, Mode.Training })
                {
                    if (!filter.Matches(new LayerResult(mode, model, n, null, null, null, null).Id)) continue;
                    string? reason = SkipReason(results, profile, mode, model, n, available);
                    if (reason is null) toRun.Add((model, mode));
                    else
                    {
                        var skipped = new LayerResult(mode, model, n, null, null, null, reason);
                        results.Layers.Add(skipped);
                        log.WriteLine($"{skipped.Id}: skipped, {reason}");
                    }
                }
            results.Layers.AddRange(MeasureAtLength(n, toRun, profile, results, log));
        }

    }

    /// <summary>
    /// Measures every given (model, mode) at one N in turns (<see cref="Harness.RunInterleaved"/>): each model is built
    /// once and serves both modes; a short matmul before and after shows how fast the machine was meanwhile.
    /// </summary>
    private static List<LayerResult> MeasureAtLength(int n, IReadOnlyList<(ModelSpec Model, Mode Mode)> cases, RunProfile profile,
        BenchmarkResults results, TextWriter log)
    {
        var measured = new List<LayerResult>();
        if (cases.Count == 0) return measured;
        int threads = results.Machine.TorchThreads;
        var built = new Dictionary<ModelSpec, ModelUnderTest>();
        try
        {
            foreach (var model in cases.Select(c => c.Model).Distinct()) built[model] = ModelUnderTest.Create(model, n, profile);
            using var inputScope = NewDisposeScope();
            manual_seed(2);
            var x = randn(profile.Batch, n, profile.Channels, device: BenchDevice.Device);   // (B, N, C)

            var runs = cases.Select(c => (c.Model, c.Mode, Case: NewCase(built[c.Model], x, c.Mode, profile, threads))).ToList();
            double before = CalibrationGflopPerSecond();
            var sinceCheck = Stopwatch.StartNew();
            Harness.RunInterleaved(runs.Select(r => r.Case).ToList(),
                beforeCase: () => Quiet.WaitForQuiet(profile.QuietWaitSeconds, profile.QuietThreshold, log),
                beforeRound: () =>
                {
                    // Checking costs half a second: only every few seconds.
                    if (sinceCheck.Elapsed.TotalSeconds < 5) return;
                    Quiet.WaitForQuiet(profile.QuietWaitSeconds, profile.QuietThreshold, log);
                    sinceCheck.Restart();
                });
            double after = CalibrationGflopPerSecond();
            results.Calibrations.Add(new CalibrationResult(n, before, after));
            log.WriteLine($"N = {n}: 1024³ matmul {before:F0} GFLOP/s before, {after:F0} after");
            foreach (var r in runs)
            {
                var result = new LayerResult(r.Mode, r.Model, n, r.Case.Timing, r.Case.PeakBytes, r.Case.CpuUtilisation, null);
                measured.Add(result);
                log.WriteLine($"{result.Id}: median {result.MedianMs:F2} ms (min {result.Timing!.MinMs:F2}, max {result.Timing.MaxMs:F2}, " +
                              $"{result.Timing.Repetitions} reps), peak {Format.MiB(result.PeakBytes)} MiB, CPU use {result.CpuUtilisation * 100:F0}%");
            }
        }
        finally
        {
            foreach (var m in built.Values) m.Dispose();
        }
        return measured;
    }

    private static InterleavedCase NewCase(ModelUnderTest model, Tensor x, Mode mode, RunProfile profile, int threads)
        => mode == Mode.Inference
            ? new InterleavedCase(() =>
                {
                    using var scope = NewDisposeScope();
                    using var noGrad = no_grad();
                    model.Forward(x);
                    BenchDevice.Synchronize();
                }, () => model.Train(false), profile.Layer, threads, measureMemory: !BenchDevice.IsCuda)
            : new InterleavedCase(() =>
                {
                    using var scope = NewDisposeScope();
                    var y = model.Forward(x);                                        // (B, N, C)
                    y.square().mean().backward();
                    BenchDevice.Synchronize();
                }, () => { model.Train(true); model.ZeroGrad(); }, profile.Layer, threads, measureMemory: !BenchDevice.IsCuda);

    /// <summary>A short fp32 1024³ matmul (median of 5): how fast the machine is right now.</summary>
    private static double CalibrationGflopPerSecond()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = randn(1024, 1024, device: BenchDevice.Device);
        var b = randn(1024, 1024, device: BenchDevice.Device);
        var t = Harness.Time(() => { using var s = NewDisposeScope(); mm(a, b); BenchDevice.Synchronize(); }, new RepetitionPolicy(2, 5, 5, 0));
        return 2.0 * 1024 * 1024 * 1024 / (t.MedianMs * 1e-3) / 1e9;
    }

    /// <summary>
    /// Skips a case whose predicted time per iteration or memory is prohibitive. The prediction scales the same
    /// model's result at N/2 by 4 for full attention (quadratic) and by 2 for Linformer (linear); a case after a
    /// skipped one is skipped too.
    /// </summary>
    private static string? SkipReason(BenchmarkResults results, RunProfile profile, Mode mode, ModelSpec model, int n, long available)
    {
        var previous = results.Layers.Where(r => r.Mode == mode && r.Model == model && r.SequenceLength < n)
            .OrderByDescending(r => r.SequenceLength).FirstOrDefault();
        if (previous is null) return null;
        if (!previous.Measured) return $"N = {previous.SequenceLength} was skipped";
        double scale = model.IsFull
            ? Math.Pow((double)n / previous.SequenceLength, 2)
            : (double)n / previous.SequenceLength;
        double predictedSeconds = previous.MedianMs!.Value * scale / 1000;
        if (predictedSeconds > profile.MaxSecondsPerIteration)
            return $"predicted {predictedSeconds:F0} s per iteration (over the {profile.MaxSecondsPerIteration:F0} s limit of the {profile.Name} profile)";
        if (previous.PeakBytes is { } peak && available != long.MaxValue)
        {
            double predictedBytes = peak * scale;
            if (predictedBytes > profile.MaxMemoryFraction * available)
                return $"predicted peak {predictedBytes / Math.Pow(1024, 3):F1} GiB (over {profile.MaxMemoryFraction * 100:F0}% of the {available / Math.Pow(1024, 3):F1} GiB available)";
        }
        return null;
    }

    /// <summary>
    /// The profiled cases: the library's shared and per-head Linformer paths at the first k at every profile length,
    /// and full attention at the shortest one only (its O(N²) attention would dominate the run time at longer ones).
    /// </summary>
    public static IEnumerable<(ModelSpec Model, int SequenceLength)> ProfileCases(RunProfile profile)
    {
        var models = ModelSpec.All(profile);
        foreach (int n in profile.ProfileLengths)
        {
            foreach (var m in models.Where(m => m.Kind == ModelKind.Linformer && m.ProjectedLength == profile.ProjectedLengths[0]))
                yield return (m, n);
            if (n == profile.ProfileLengths.Min()) yield return (models.First(m => m.Kind == ModelKind.FullFused), n);
        }
    }

    public static string ProfileId(ModelSpec model, int n) => $"profile/{model.Id}/{n}";

    private static void RunProfiles(RunProfile profile, CaseFilter filter, BenchmarkResults results, TextWriter log)
    {
        foreach (var (model, n) in ProfileCases(profile))
        {
            if (!filter.Matches(ProfileId(model, n))) continue;
            if (BenchDevice.IsCuda)
            {
                log.WriteLine($"{ProfileId(model, n)}: skipped, the part-by-part profile runs on the CPU only");
                continue;
            }
            Quiet.WaitForQuiet(profile.QuietWaitSeconds, profile.QuietThreshold, log);
            var p = LayerProfiler.Profile(model, n, profile);
            results.Profiles.Add(p);
            log.WriteLine($"{ProfileId(model, n)}: whole layer {p.WholeLayer.MedianMs:F2} ms, sum of parts {p.SumOfPartsMs:F2} ms");
            foreach (var part in p.Parts.Concat(p.Alternatives))
                log.WriteLine($"    {part.Name,-52} {part.Timing.MedianMs,9:F2} ms");
        }
    }
}

/// <summary>Number formats shared by the log and the report.</summary>
internal static class Format
{
    public static string MiB(long? bytes) => bytes is { } b ? (b / (1024.0 * 1024.0)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "n/a";
}
