namespace Linformer.MLNet.Benchmarks;

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

/// <summary>Sizes and repetitions of the ML.NET overhead and training-throughput sections for one run profile.</summary>
internal sealed record MlNetSettings
{
    /// <summary>Models whose <c>Transform</c> is compared with the raw network.</summary>
    public required MlNetModel[] Transform { get; init; }
    /// <summary>Rows of data each <c>Transform</c> pass reads.</summary>
    public required int TransformRows { get; init; }
    /// <summary>Timed passes of each side (ML.NET and raw), taken in turns.</summary>
    public required int TransformRounds { get; init; }

    /// <summary>The model whose <c>PredictionEngine</c> latency is measured.</summary>
    public required MlNetModel Predict { get; init; }
    /// <summary>Untimed single-row calls of each side before the timed ones.</summary>
    public required int PredictWarmups { get; init; }
    /// <summary>Timed single-row calls of each side.</summary>
    public required int PredictCalls { get; init; }
    /// <summary>Calls per block: the sides alternate in blocks of this many calls.</summary>
    public required int PredictBlock { get; init; }

    /// <summary>The model <c>Fit</c> trains (classification head on a Boolean label).</summary>
    public required MlNetModel Fit { get; init; }
    public required int FitRows { get; init; }
    public required int FitEpochs { get; init; }
    /// <summary>Timed fits of each side (Fit and the raw loop), taken in turns.</summary>
    public required int FitRounds { get; init; }

    /// <summary>The quick-start model of the README: tokens, N = 1024, width 64, k = 64, 4 heads, depth 2, FF 256, batch 16.</summary>
    private static MlNetModel QuickStart(int n) => new("tokens", n, 50257, 0, 64, 64, 4, 2, 256, 16);

    /// <summary>A float-input model: 8 channels per position projected to width 64, batch 32.</summary>
    private static MlNetModel Floats(int n) => new("floats", n, 0, 8, 64, 64, 4, 2, 256, 32);

    public static MlNetSettings Full { get; } = new()
    {
        Transform = [QuickStart(1024), Floats(512)],
        TransformRows = 256,
        TransformRounds = 7,
        Predict = QuickStart(1024),
        PredictWarmups = 20,
        PredictCalls = 300,
        PredictBlock = 1,
        Fit = QuickStart(1024),
        FitRows = 256,
        FitEpochs = 1,
        FitRounds = 3,
    };

    public static MlNetSettings Quick { get; } = new()
    {
        Transform = [QuickStart(512), Floats(256)],
        TransformRows = 128,
        TransformRounds = 3,
        Predict = QuickStart(512),
        PredictWarmups = 10,
        PredictCalls = 100,
        PredictBlock = 1,
        Fit = QuickStart(512),
        FitRows = 64,
        FitEpochs = 1,
        FitRounds = 2,
    };

    private static readonly MlNetModel TinyTokens = new("tokens", 32, 100, 0, 16, 8, 2, 1, 32, 4);

    public static MlNetSettings Smoke { get; } = new()
    {
        Transform = [TinyTokens, new("floats", 32, 0, 2, 16, 8, 2, 1, 32, 4)],
        TransformRows = 10,
        TransformRounds = 1,
        Predict = TinyTokens,
        PredictWarmups = 1,
        PredictCalls = 4,
        PredictBlock = 2,
        Fit = TinyTokens,
        FitRows = 10,
        FitEpochs = 1,
        FitRounds = 1,
    };

    // Case ids (see CaseFilter): overhead/transform/<model>-n<N>-b<B>, overhead/predict/<model>-n<N>, fit/<model>-n<N>-b<B>.
    public static string TransformId(MlNetModel m) => $"overhead/transform/{m.Name}-n{m.SequenceLength}-b{m.Batch}";
    public static string PredictId(MlNetModel m) => $"overhead/predict/{m.Name}-n{m.SequenceLength}";
    public static string FitId(MlNetModel m) => $"fit/{m.Name}-n{m.SequenceLength}-b{m.Batch}";

    public IEnumerable<string> CaseIds()
    {
        foreach (var m in Transform) yield return TransformId(m);
        yield return PredictId(Predict);
        yield return FitId(Fit);
    }
}
