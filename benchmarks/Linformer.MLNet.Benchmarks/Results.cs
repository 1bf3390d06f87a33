namespace Linformer.MLNet.Benchmarks;

/// <summary>Inference (eval + no_grad) or one training step (forward + backward).</summary>
internal enum Mode { Inference, Training }

/// <summary>One layer case: a model at one N in one mode; measured or skipped with a reason.</summary>
internal sealed record LayerResult(Mode Mode, ModelSpec Model, int SequenceLength, Timing? Timing, long? PeakBytes,
    double? CpuUtilisation, string? Skipped)
{
    public string Id => $"layer/{Mode.ToString().ToLowerInvariant()}/{Model.Id}/{SequenceLength}";
    public bool Measured => Timing is not null;
    public double? MedianMs => Timing?.MedianMs;
    public double? PeakMiB => PeakBytes / (1024.0 * 1024.0);
}

/// <summary>The fp32 matmul that gives attainable FLOP/s.</summary>
internal sealed record MatmulResult(string When, int Size, Timing Timing)
{
    public double Flops => 2.0 * Size * Size * (double)Size;
    public double GflopPerSecond => Flops / (Timing.MedianMs * 1e-3) / 1e9;
}

/// <summary>A short matmul's rate just before and just after the cases at one N: how fast the machine was meanwhile.</summary>
internal sealed record CalibrationResult(int SequenceLength, double BeforeGflopPerSecond, double AfterGflopPerSecond);

/// <summary>Everything one run produced, plus what is needed to describe it.</summary>
internal sealed class BenchmarkResults
{
    public required RunProfile Profile { get; init; }
    public required CaseFilter Filter { get; init; }
    public required MachineInfo Machine { get; init; }
    public required IReadOnlyList<ModelSpec> Models { get; init; }
    public List<LayerResult> Layers { get; } = [];
    public List<MatmulResult> Matmuls { get; } = [];
    public List<CalibrationResult> Calibrations { get; } = [];
    public List<LayerProfile> Profiles { get; } = [];
    public List<TransformOverheadResult> TransformOverheads { get; } = [];
    public List<PredictLatencyResult> PredictLatencies { get; } = [];
    public List<FitThroughputResult> FitThroughputs { get; } = [];
    /// <summary>The device the run measured on (CPU unless <c>--device cuda</c>).</summary>
    public string Device { get; init; } = "CPU";
    public TimeSpan Duration { get; set; }
    public string LoadAverageAtEnd { get; set; } = "";

    /// <summary>
    /// Attainable fp32 FLOP/s: the best rate of any matmul in the run (the 2048³ reference at start and end, the
    /// 1024³ speed checks around each N), or null when none ran. The host's speed varies over a run, so the best
    /// rate, not the first, is what the machine can attain.
    /// </summary>
    public double? AttainableGflopPerSecond
    {
        get
        {
            var rates = Matmuls.Select(m => m.GflopPerSecond)
                .Concat(Calibrations.SelectMany(c => new[] { c.BeforeGflopPerSecond, c.AfterGflopPerSecond })).ToList();
            return rates.Count == 0 ? null : rates.Max();
        }
    }

    public LayerResult? Find(Mode mode, ModelSpec model, int n)
        => Layers.FirstOrDefault(r => r.Mode == mode && r.Model == model && r.SequenceLength == n);
}
