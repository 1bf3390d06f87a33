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

    /// <summary>A case predicted (from the previous N) to take longer than this per iteration is skipped.</summary>
    public required double MaxSecondsPerIteration { get; init; }
    /// <summary>A case predicted to need more than this fraction of the available memory is skipped.</summary>
    public double MaxMemoryFraction { get; init; } = 0.6;

    /// <summary>Longest wait, before a case, for other processes to leave the cores (see <see cref="Quiet"/>); 0 = never wait.</summary>
    public double QuietWaitSeconds { get; init; }
    /// <summary>Total waiting allowed in one run; once spent, cases run without waiting.</summary>
    public double QuietWaitBudgetSeconds { get; init; }
    /// <summary>The cores count as free when other processes use less than this share of them.</summary>
    public double QuietThreshold { get; init; } = 0.10;

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
        MlNet = MlNetSettings.Full,
        MaxSecondsPerIteration = 45,
        QuietWaitSeconds = 90,
        QuietWaitBudgetSeconds = 1200,
    };

    /// <summary>Same model, three lengths, fewer repetitions: a few minutes on 2 cores.</summary>
    public static RunProfile Quick { get; } = Full with
    {
        Name = "quick",
        SequenceLengths = [1024, 2048, 4096],
        ProfileLengths = [4096],
        Layer = new RepetitionPolicy(Warmups: 1, MinRepetitions: 3, MaxRepetitions: 5, SecondsPerCase: 0.8),
        Parts = new RepetitionPolicy(Warmups: 1, MinRepetitions: 3, MaxRepetitions: 9, SecondsPerCase: 0.3),
        MlNet = MlNetSettings.Quick,
        MaxSecondsPerIteration = 10,
        QuietWaitSeconds = 60,
        QuietWaitBudgetSeconds = 240,
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
        MlNet = MlNetSettings.Smoke,
        MaxSecondsPerIteration = 5,
    };

    public int HeadWidth => Channels / Heads;
}
