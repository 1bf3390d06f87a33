using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Linformer.MLNet.Tests.Hardening;

/// <summary>Small models and data shared by the hardening tests (two cores: keep them tiny).</summary>
internal static class Tiny
{
    public const int N = 16;
    public const int Vocabulary = 8;

    public sealed class Row
    {
        [VectorType(N)] public int[] Tokens { get; set; } = new int[N];
        public bool Label { get; set; }
    }

    public sealed class Encoded
    {
        [VectorType(8)] public float[] Features { get; set; } = Array.Empty<float>();
    }

    public static IEnumerable<Row> Rows(int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var tokens = new int[N];
            for (int p = 0; p < N; p++) tokens[p] = random.Next(Vocabulary);
            yield return new Row { Tokens = tokens, Label = tokens[0] < Vocabulary / 2 };
        }
    }

    public static LinformerEstimator.Options Options(int epochs = 1, bool label = true) => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = label ? "Label" : null,
        VocabularySize = Vocabulary, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16,
        Epochs = epochs, BatchSize = 4,
    };

    public static LinformerTransformer Fit(MLContext ml, IDataView data, LinformerEstimator.Options? options = null)
        => ml.Transforms.Linformer(options ?? Options()).Fit(data);

    /// <summary>Every value of the output column, row by row.</summary>
    public static List<float[]> Features(ITransformer model, IDataView data)
        => model.Transform(data).GetColumn<float[]>("Features").ToList();

    public static void AssertBitIdentical(IReadOnlyList<float[]> expected, IReadOnlyList<float[]> actual, string what)
    {
        Assert.HasCount(expected.Count, actual, what);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.HasCount(expected[i].Length, actual[i], $"{what}: row {i}");
            for (int j = 0; j < expected[i].Length; j++)
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i][j]), BitConverter.SingleToInt32Bits(actual[i][j]), $"{what}: row {i}, value {j}");
        }
    }

    /// <summary>Every tensor of the network's state dict as raw bytes, by name.</summary>
    public static Dictionary<string, byte[]> Weights(LinformerTransformer model)
    {
        using var scope = torch.NewDisposeScope();
        return model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.cpu().contiguous().bytes.ToArray());
    }

    public static void AssertSameWeights(Dictionary<string, byte[]> expected, Dictionary<string, byte[]> actual, string what)
    {
        CollectionAssert.AreEquivalent(expected.Keys.ToList(), actual.Keys.ToList(), what);
        foreach (var (name, bytes) in expected)
            Assert.IsTrue(bytes.AsSpan().SequenceEqual(actual[name]), $"{what}: tensor '{name}' differs");
    }

    /// <summary>Live tensors created on this thread and not yet disposed (TorchSharp's per-thread statistics).</summary>
    public static long LiveTensors() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    public static string TempPath(string extension) => Path.Combine(Path.GetTempPath(), $"linformer-hardening-{Guid.NewGuid():N}{extension}");

    public static IEnumerable<Exception> Chain(Exception? e) { for (; e is not null; e = e.InnerException) yield return e; }

    public static string Messages(Exception e) => string.Join(" | ", Chain(e).Select(x => $"{x.GetType().Name}: {x.Message}"));
}
