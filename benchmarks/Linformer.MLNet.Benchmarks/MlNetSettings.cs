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

/// <summary>
/// Sizes and repetitions of the ML.NET sections for one run profile: the models whose <c>Transform</c> is compared
/// with the raw network, the rows each pass reads and the timed rounds (each side once per round, in turns); the
/// <c>PredictionEngine</c> model, its untimed and timed single-row calls and the block of calls the sides alternate
/// in; the model <c>Fit</c> trains (classification head on a Boolean label), its rows, epochs and timed rounds.
/// </summary>
internal sealed record MlNetSettings(MlNetModel[] Transform, int TransformRows, int TransformRounds,
    MlNetModel Predict, int PredictWarmups, int PredictCalls, int PredictBlock,
    MlNetModel Fit, int FitRows, int FitEpochs, int FitRounds)
{
    /// <summary>The quick-start model of the README: tokens, width 64, k = 64, 4 heads, depth 2, FF 256, batch 16.</summary>
    private static MlNetModel QuickStart(int n) => new("tokens", n, 50257, 0, 64, 64, 4, 2, 256, 16);

    /// <summary>A float-input model: 8 channels per position projected to width 64, batch 32.</summary>
    private static MlNetModel Floats(int n) => new("floats", n, 0, 8, 64, 64, 4, 2, 256, 32);

    private static readonly MlNetModel TinyTokens = new("tokens", 32, 100, 0, 16, 8, 2, 1, 32, 4);

    public static MlNetSettings Full { get; } = new([QuickStart(1024), Floats(512)], 256, 7, QuickStart(1024), 20, 300, 1, QuickStart(1024), 256, 1, 3);
    public static MlNetSettings Quick { get; } = new([QuickStart(512), Floats(256)], 128, 3, QuickStart(512), 10, 100, 1, QuickStart(512), 64, 1, 2);
    public static MlNetSettings Smoke { get; } = new([TinyTokens, new("floats", 32, 0, 2, 16, 8, 2, 1, 32, 4)], 10, 1, TinyTokens, 1, 4, 2, TinyTokens, 10, 1, 1);

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
