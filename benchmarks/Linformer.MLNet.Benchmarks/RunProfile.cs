namespace Linformer.MLNet.Benchmarks;

/// <summary>Which sizes run and how often: <c>full</c> (the documented run), <c>--quick</c>, <c>--smoke</c>.</summary>
internal sealed record RunProfile
{
    public required string Name { get; init; }

    // The layer: model width C (H·D), heads, feed-forward width, batch.
    public required int Channels { get; init; }
    public required int Heads { get; init; }
    public required int FeedForward { get; init; }
    public required int Batch { get; init; }

    /// <summary>Projected lengths k; the first is compared with the paper's k = 128 column.</summary>
    public required int[] ProjectedLengths { get; init; }
    /// <summary>Sequence lengths N, ascending, each twice the one before (growth ratios need pairs N, 2N).</summary>
    public required int[] SequenceLengths { get; init; }

    /// <summary>Side of the square fp32 matmul that gives the attainable FLOP/s.</summary>
    public required int MatmulSize { get; init; }
    /// <summary>Sequence lengths at which the Linformer layer is profiled part by part.</summary>
    public required int[] ProfileLengths { get; init; }

    public required RepetitionPolicy Layer { get; init; }
    public required RepetitionPolicy Parts { get; init; }
    public required MlNetSettings MlNet { get; init; }
    /// <summary>Training rows of the <c>Fit</c> peak-memory cases (docs/memory.md), one process each.</summary>
    public required int[] FitMemoryRows { get; init; }

    /// <summary>A case predicted (from the previous N) to take longer than this per iteration is skipped.</summary>
    public required double MaxSecondsPerIteration { get; init; }
    /// <summary>A case predicted to need more than this fraction of the available memory is skipped.</summary>
    public double MaxMemoryFraction { get; init; } = 0.6;

    /// <summary>The paper's Table 3 setting on the CPU budget of the build machines: one layer, C = 256, 4 heads of 64, FF = 4C, batch 1.</summary>
    public static RunProfile Full { get; } = new()
    {
        Name = "full",
        Channels = 256, Heads = 4, FeedForward = 1024, Batch = 1,
        ProjectedLengths = [128, 256],
        SequenceLengths = [512, 1024, 2048, 4096, 8192, 16384],
        MatmulSize = 2048,
        ProfileLengths = [4096, 16384],
        Layer = new RepetitionPolicy(Warmups: 2, MinRepetitions: 3, MaxRepetitions: 15, SecondsPerCase: 3),
        Parts = new RepetitionPolicy(Warmups: 2, MinRepetitions: 5, MaxRepetitions: 25, SecondsPerCase: 1),
        MlNet = new([QuickStart(512), Floats(512)], 256, 7, QuickStart(512), 20, 300, QuickStart(512), 256, 1, 4),
        FitMemoryRows = [10_000, 200_000],
        MaxSecondsPerIteration = 45,
    };

    /// <summary>Same model, three lengths, fewer repetitions: a few minutes on 2 cores.</summary>
    public static RunProfile Quick { get; } = Full with
    {
        Name = "quick",
        SequenceLengths = [1024, 2048, 4096],
        ProfileLengths = [4096],
        Layer = new RepetitionPolicy(Warmups: 1, MinRepetitions: 3, MaxRepetitions: 5, SecondsPerCase: 0.8),
        Parts = new RepetitionPolicy(Warmups: 1, MinRepetitions: 3, MaxRepetitions: 9, SecondsPerCase: 0.3),
        MlNet = new([QuickStart(256), Floats(256)], 128, 3, QuickStart(256), 10, 100, QuickStart(256), 64, 1, 2),
        FitMemoryRows = [2_000, 20_000],
        MaxSecondsPerIteration = 10,
    };

    /// <summary>Tiny sizes, one or two repetitions: every code path (tables and plots included) in seconds.</summary>
    public static RunProfile Smoke { get; } = new()
    {
        Name = "smoke",
        Channels = 32, Heads = 2, FeedForward = 64, Batch = 1,
        ProjectedLengths = [8, 16],
        SequenceLengths = [32, 64],
        MatmulSize = 64,
        ProfileLengths = [64],
        Layer = new RepetitionPolicy(Warmups: 1, MinRepetitions: 1, MaxRepetitions: 2, SecondsPerCase: 0.01),
        Parts = new RepetitionPolicy(Warmups: 1, MinRepetitions: 1, MaxRepetitions: 2, SecondsPerCase: 0.01),
        MlNet = new([TinyTokens, new("floats", 32, 0, 2, 16, 8, 2, 1, 32, 4)], 10, 1, TinyTokens, 1, 4, TinyTokens, 10, 1, 1),
        FitMemoryRows = [300, 600],
        MaxSecondsPerIteration = 5,
    };

    public int HeadWidth => Channels / Heads;

    /// <summary>The model of Examples/QuickStart: GPT-2 token ids, width 64, k = 64, 4 heads, depth 1, FF 128, batch 16 (it reads N = 512).</summary>
    internal static MlNetModel QuickStart(int n) => new("tokens", n, 50257, 0, 64, Math.Min(64, n), 4, 1, 128, 16);

    /// <summary>A float-input model: 8 channels per position projected to width 64, batch 32.</summary>
    private static MlNetModel Floats(int n) => new("floats", n, 0, 8, 64, 64, 4, 2, 256, 32);

    private static MlNetModel TinyTokens => new("tokens", 32, 100, 0, 16, 8, 2, 1, 32, 4);
}

/// <summary>
/// One model of the ML.NET sections, with the data it reads: token ids (<see cref="Vocabulary"/> &gt; 0, padding id 0)
/// or float sequences of <see cref="InputChannels"/> channels with a mask column.
/// </summary>
internal sealed record MlNetModel(string Name, int SequenceLength, int Vocabulary, int InputChannels, int Width, int ProjectedLength,
    int Heads, int Depth, int FeedForward, int Batch)
{
    public bool Tokens => Vocabulary > 0;

    /// <summary>Short description for tables: input, N, C, k, heads, depth, batch.</summary>
    public string Describe => (Tokens ? $"token ids (vocabulary {Vocabulary:N0}, padding id 0)" : $"floats, {InputChannels} channels + mask")
        + $", N = {SequenceLength}, width {Width}, k = {ProjectedLength}, {Heads} heads, depth {Depth}, FF {FeedForward}, batch {Batch}";
}

/// <summary>
/// Sizes and repetitions of the ML.NET sections: the models whose <c>Transform</c> is compared with the raw network,
/// the rows each pass reads and the timed rounds; the <c>PredictionEngine</c> model with its untimed and timed
/// single-row calls; the model <c>Fit</c> trains (classification head on a Boolean label), its rows, epochs and rounds.
/// </summary>
internal sealed record MlNetSettings(MlNetModel[] Transform, int TransformRows, int TransformRounds,
    MlNetModel Predict, int PredictWarmups, int PredictCalls, MlNetModel Fit, int FitRows, int FitEpochs, int FitRounds);
