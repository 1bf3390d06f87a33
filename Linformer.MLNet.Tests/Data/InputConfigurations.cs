using Linformer.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// The input configurations of the ML.NET layer, as one table: every token item type (Int32, Int64, Key&lt;UInt32&gt;),
/// padding by <see cref="LinformerEstimator.Options.PaddingTokenId"/> or by a mask column, every
/// <see cref="LinformerOutputKind"/>, and the regression head's scalar score. Tiny models: two cores run the suite.
/// </summary>
internal static class InputConfigurations
{
    public const int N = 16;
    public const int Channels = 2;
    public const int Vocabulary = 12;
    public const int Width = 8;
    public const int PaddingId = 0;

    /// <summary>One row holding every input column kind; a configuration reads one of them.</summary>
    public sealed class Row
    {
        [VectorType(N)] public int[] Int32Tokens { get; set; } = new int[N];
        [VectorType(N)] public long[] Int64Tokens { get; set; } = new long[N];
        [VectorType(N), KeyType(Vocabulary)] public uint[] KeyTokens { get; set; } = new uint[N];
        [VectorType(N * Channels)] public float[] Values { get; set; } = new float[N * Channels];
        [VectorType(N)] public bool[] Mask { get; set; } = new bool[N];
        public float Target { get; set; }
    }

    /// <summary>What a <c>PredictionEngine</c> returns; <c>Score</c> is absent (ignored) where a configuration has none.</summary>
    public sealed class Prediction
    {
        public float[] Features { get; set; } = Array.Empty<float>();
        public float Score { get; set; }
    }

    /// <summary>One input configuration.</summary>
    /// <param name="Name">Shown in every failure message.</param>
    /// <param name="Input">The input column.</param>
    /// <param name="MaskColumn">Whether the mask column is bound (float input).</param>
    /// <param name="PaddingTokenId">The padding id (token input).</param>
    /// <param name="OutputKind">What the output column holds.</param>
    /// <param name="RegressionScore">Whether the model has a regression head whose value is emitted as <c>Score</c>.</param>
    public sealed record Configuration(string Name, string Input, bool MaskColumn, int? PaddingTokenId, LinformerOutputKind OutputKind, bool RegressionScore)
    {
        public bool IsTokens => Input != nameof(Row.Values);

        public int FeatureSize => OutputKind == LinformerOutputKind.Sequence ? N * Width : Width;

        public string[] OutputColumns => RegressionScore ? new[] { "Features", "Score" } : new[] { "Features" };

        public LinformerEstimator.Options Options() => new()
        {
            InputColumnName = Input, OutputColumnName = "Features",
            MaskColumnName = MaskColumn ? nameof(Row.Mask) : null,
            PaddingTokenId = PaddingTokenId,
            LabelColumnName = RegressionScore ? nameof(Row.Target) : null,
            ScoreColumnName = RegressionScore ? "Score" : null,
            VocabularySize = IsTokens ? Vocabulary : 0,
            SequenceLength = IsTokens ? 0 : N,
            OutputKind = OutputKind,
            ModelWidth = Width, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16,
            Dropout = 0, FeedForwardDropout = 0, Epochs = 1, BatchSize = 4,
        };

        public override string ToString() => Name;
    }

    public static readonly Configuration[] All =
    {
        new("Int32 tokens, PaddingTokenId, mean-pooled, regression Score", nameof(Row.Int32Tokens), false, PaddingId, LinformerOutputKind.MeanPooled, true),
        new("Int64 tokens, PaddingTokenId, first position", nameof(Row.Int64Tokens), false, PaddingId, LinformerOutputKind.FirstPosition, false),
        new("Key tokens, PaddingTokenId, sequence, regression Score", nameof(Row.KeyTokens), false, PaddingId, LinformerOutputKind.Sequence, true),
        new("floats with a mask column, mean-pooled, regression Score", nameof(Row.Values), true, null, LinformerOutputKind.MeanPooled, true),
        new("floats with a mask column, first position", nameof(Row.Values), true, null, LinformerOutputKind.FirstPosition, false),
        new("floats with a mask column, sequence", nameof(Row.Values), true, null, LinformerOutputKind.Sequence, false),
    };

    /// <summary>
    /// Rows with 3 to N - 2 real positions, so every row (and every batch) is padded: padding holds
    /// <see cref="PaddingId"/> in the token columns and false in the mask; padded float values are large and random,
    /// so they would show in the output if the mask were lost.
    /// </summary>
    public static List<Row> Rows(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>();
        for (int i = 0; i < count; i++)
        {
            int real = 3 + random.Next(N - 4);
            var ids = Enumerable.Range(0, N).Select(p => p < real ? 1 + random.Next(Vocabulary - 1) : PaddingId).ToArray();
            var values = Enumerable.Range(0, N * Channels)
                .Select(j => (float)(j / Channels < real ? random.NextDouble() * 2 - 1 : 50 + random.NextDouble() * 50)).ToArray();
            rows.Add(new Row
            {
                Int32Tokens = ids,
                Int64Tokens = ids.Select(t => (long)t).ToArray(),
                KeyTokens = ids.Select(t => (uint)t + 1).ToArray(),   // keys are 1-based
                Values = values,
                Mask = Enumerable.Range(0, N).Select(p => p < real).ToArray(),
                Target = values[0] + 0.1f * ids[0],
            });
        }
        return rows;
    }

    /// <summary>
    /// Sets libtorch to one intra-op thread until disposed. For tensors this small the thread pool only adds
    /// contention: on a busy two-core machine these tests ran six times slower with two threads (docs/hardening.md,
    /// "Soak"). Not for tests that compare with another process, which runs with the default thread count.
    /// </summary>
    public static IDisposable OneIntraOpThread()
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        return new Restore(() => torch.set_num_threads(threads));
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>Every value of a Single column (vector or scalar), row by row.</summary>
    public static List<float[]> Column(IDataView data, string column)
        => data.Schema[column].Type is VectorDataViewType
            ? data.GetColumn<float[]>(column).ToList()
            : data.GetColumn<float>(column).Select(v => new[] { v }).ToList();
}
