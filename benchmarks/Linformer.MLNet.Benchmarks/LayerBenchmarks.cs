using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>Inference (eval + no_grad) or one training step (forward + backward).</summary>
internal enum Mode { Inference, Training }

/// <summary>One layer case: a model at one N in one mode; measured or skipped with a reason.</summary>
internal sealed record LayerResult(Mode Mode, ModelSpec Model, int SequenceLength, Timing? Timing, long? PeakBytes,
    double? CpuUtilisation, string? Skipped)
{
    public string Id => CaseId(Mode, Model, SequenceLength);
    public bool Measured => Timing is not null;
    public double? MedianMs => Timing?.MedianMs;
    public double? PeakMiB => PeakBytes / (1024.0 * 1024.0);

    public static string CaseId(Mode mode, ModelSpec model, int n) => $"layer/{mode.ToString().ToLowerInvariant()}/{model.Id}/{n}";
}

/// <summary>The fp32 matmul that gives attainable FLOP/s, timed at the start and at the end of the run.</summary>
internal sealed record MatmulResult(string When, int Size, Timing Timing)
{
    public double GflopPerSecond => Flops.GflopPerSecond(Flops.Matmul(Size), Timing.MedianMs);
}

/// <summary>
/// The encoder layer against full attention: the matmul reference, then for each N every model in both modes
/// (measured in turns, so models are compared under the same machine conditions), then the matmul again.
/// Tables in LayerTables.cs.
/// </summary>
internal sealed partial class LayerBenchmarks : IBenchmarkSection
{
    public IReadOnlyList<ModelSpec> Models { get; private set; } = [];
    public List<LayerResult> Layers { get; } = [];
    public List<MatmulResult> Matmuls { get; } = [];
    /// <summary>A short matmul's rate (GFLOP/s) just before and just after the cases at one N: how fast the machine was meanwhile.</summary>
    public List<(int SequenceLength, double Before, double After)> Calibrations { get; } = [];

    public IEnumerable<string> CaseIds(RunProfile profile)
    {
        yield return $"matmul/{profile.MatmulSize}";
        foreach (int n in profile.SequenceLengths)
            foreach (var model in ModelSpec.All(profile))
                foreach (var mode in new[] { Mode.Inference, Mode.Training })
                    yield return LayerResult.CaseId(mode, model, n);
    }

    public LayerResult? Find(Mode mode, ModelSpec model, int n)
        => Layers.FirstOrDefault(r => r.Mode == mode && r.Model == model && r.SequenceLength == n);

    public void Run(BenchmarkRun run)
    {
        Models = ModelSpec.All(run.Profile);
        if (!PeakMemory.IsSupported) run.Log.WriteLine("peak memory: not supported on this system (needs Linux /proc); memory stays empty");
        RunMatmul("start", run);
        long available = PeakMemory.AvailableBytes() ?? long.MaxValue;
        foreach (int n in run.Profile.SequenceLengths) MeasureAtLength(n, available, run);
        RunMatmul("end", run);
    }

    private void RunMatmul(string when, BenchmarkRun run)
    {
        int s = run.Profile.MatmulSize;
        if (!run.Filter.Matches($"matmul/{s}")) return;
        var timing = TimeMatmul(s, run.Profile.Layer with { MinRepetitions = Math.Min(5, run.Profile.Layer.MaxRepetitions) });
        var result = new MatmulResult(when, s, timing);
        Matmuls.Add(result);
        run.MatmulRates.Add(result.GflopPerSecond);
        run.Log.WriteLine($"matmul/{s} ({when}): {timing.MedianMs:F2} ms = {result.GflopPerSecond:F1} GFLOP/s");
    }

    /// <summary>Times an s × s by s × s matmul of <paramref name="type"/> (the precision section times bf16 too).</summary>
    internal static Timing TimeMatmul(int s, RepetitionPolicy policy, ScalarType type = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(1);
        var a = randn(s, s, device: BenchDevice.Device).to_type(type);
        var b = randn(s, s, device: BenchDevice.Device).to_type(type);
        return Harness.Time(() => mm(a, b).Dispose(), policy);
    }

    /// <summary>A short fp32 1024³ matmul (median of 5): how fast the machine is right now.</summary>
    private static double CalibrationGflopPerSecond() => Flops.GflopPerSecond(Flops.Matmul(1024), TimeMatmul(1024, new RepetitionPolicy(2, 5, 5, 0)).MedianMs);

    /// <summary>
    /// Measures the selected (model, mode) cases at one N in turns (<see cref="Harness.RunInterleaved"/>), after recording
    /// those skipped with their reason: each model is built once and serves both modes; a short matmul before and after
    /// shows how fast the machine was meanwhile.
    /// </summary>
    private void MeasureAtLength(int n, long available, BenchmarkRun run)
    {
        var cases = new List<(ModelSpec Model, Mode Mode)>();
        foreach (var model in Models)
            foreach (var mode in new[] { Mode.Inference, Mode.Training }.Where(mode => run.Filter.Matches(LayerResult.CaseId(mode, model, n))))
            {
                if (SkipReason(run.Profile, mode, model, n, available) is not { } reason) cases.Add((model, mode));
                else
                {
                    Layers.Add(new LayerResult(mode, model, n, null, null, null, reason));
                    run.Log.WriteLine($"{LayerResult.CaseId(mode, model, n)}: skipped, {reason}");
                }
            }
        if (cases.Count == 0) return;
        var profile = run.Profile;
        var built = new Dictionary<ModelSpec, ModelUnderTest>();
        try
        {
            foreach (var model in cases.Select(c => c.Model).Distinct()) built[model] = ModelUnderTest.Create(model, n, profile);
            using var inputScope = NewDisposeScope();
            manual_seed(2);
            var x = randn(profile.Batch, n, profile.Channels, device: BenchDevice.Device);   // (B, N, C)
            var runs = cases.Select(c => (c.Model, c.Mode, Case: NewCase(built[c.Model], x, c.Mode, profile))).ToList();
            double before = CalibrationGflopPerSecond();
            Harness.RunInterleaved(runs.Select(r => r.Case).ToList(), null, null);
            double after = CalibrationGflopPerSecond();
            Calibrations.Add((n, before, after));
            run.MatmulRates.AddRange([before, after]);
            run.Log.WriteLine($"N = {n}: 1024³ matmul {before:F0} GFLOP/s before, {after:F0} after");
            foreach (var r in runs)
            {
                var result = new LayerResult(r.Mode, r.Model, n, r.Case.Timing, r.Case.PeakBytes, r.Case.CpuUtilisation, null);
                Layers.Add(result);
                run.Log.WriteLine($"{result.Id}: median {result.MedianMs:F2} ms ({result.Timing!.Repetitions} reps), " +
                                  $"peak {MiB(result.PeakBytes)} MiB, CPU use {result.CpuUtilisation * 100:F0}%");
            }
        }
        finally
        {
            foreach (var m in built.Values) m.Dispose();
        }
    }

    private static InterleavedCase NewCase(ModelUnderTest model, Tensor x, Mode mode, RunProfile profile) => new(() =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = mode == Mode.Inference ? no_grad() : null;
            var y = model.Forward(x);                                                // (B, N, C)
            if (mode == Mode.Training) y.square().mean().backward();
        }, () =>
        {
            model.Train(mode == Mode.Training);
            if (mode == Mode.Training) model.ZeroGrad();
        }, profile.Layer, get_num_threads(), measureMemory: !BenchDevice.IsCuda);

    /// <summary>
    /// Skips a case whose predicted time per iteration or memory is prohibitive. The prediction scales the same
    /// model's result at N/2 by 4 for full attention (quadratic) and by 2 for Linformer (linear); a case after a
    /// skipped one is skipped too.
    /// </summary>
    private string? SkipReason(RunProfile profile, Mode mode, ModelSpec model, int n, long available)
    {
        var previous = Layers.Where(r => r.Mode == mode && r.Model == model && r.SequenceLength < n)
            .OrderByDescending(r => r.SequenceLength).FirstOrDefault();
        if (previous is null) return null;
        if (!previous.Measured) return $"N = {previous.SequenceLength} was skipped";
        double scale = model.IsFull ? Math.Pow((double)n / previous.SequenceLength, 2) : (double)n / previous.SequenceLength;
        double predictedSeconds = previous.MedianMs!.Value * scale / 1000;
        if (predictedSeconds > profile.MaxSecondsPerIteration)
            return $"predicted {predictedSeconds:F0} s per iteration (over the {profile.MaxSecondsPerIteration:F0} s limit of the {profile.Name} profile)";
        if (previous.PeakBytes is { } peak && available != long.MaxValue && peak * scale > profile.MaxMemoryFraction * available)
            return $"predicted peak {peak * scale / Math.Pow(1024, 3):F1} GiB (over {profile.MaxMemoryFraction * 100:F0}% of the {available / Math.Pow(1024, 3):F1} GiB available)";
        return null;
    }

    private static string MiB(long? bytes) => bytes is { } b ? Markdown.F(b / (1024.0 * 1024.0), 1) : "n/a";

    public void WritePlots(BenchmarkRun run, string imageDirectory) => Plots.Write(this, run.Profile, imageDirectory);
}
