using Linformer.MLNet.Modules;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests;

/// <summary>
/// Float input carries no order of its own, and attention (full attention, with mean pooling) is blind to a
/// permutation of the positions: new models therefore add a sinusoidal position embedding by default.
/// </summary>
[TestClass]
public sealed class LinformerPositionEmbeddingTests
{
    private const int N = 16, Channels = 2;

    public sealed class Row { [VectorType(N * Channels)] public float[] Values { get; set; } = Array.Empty<float>(); }

    /// <summary>Largest difference of the pooled encodings of the rows and of the same rows with their positions reversed.</summary>
    private static double PermutationEffect(PositionEmbedding? positionEmbedding)
    {
        var ml = new MLContext(seed: 5);
        var random = new Random(5);
        var rows = Enumerable.Range(0, 4).Select(_ => new Row { Values = Enumerable.Range(0, N * Channels).Select(_ => (float)random.NextDouble()).ToArray() }).ToList();
        var reversed = rows.Select(r => new Row
        {
            Values = Enumerable.Range(0, N).Reverse().SelectMany(p => r.Values.Skip(p * Channels).Take(Channels)).ToArray(),
        }).ToList();
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Values", OutputColumnName = "Features", SequenceLength = N, Channels = Channels,
            ModelWidth = 8, Heads = 2, Depth = 1, FeedForwardSize = 16, FullAttention = true, Epochs = 0,
            PositionEmbedding = positionEmbedding,
        };
        using var model = ml.Transforms.Linformer(options).Fit(ml.Data.LoadFromEnumerable(rows));
        var a = model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Features").ToList();
        var b = model.Transform(ml.Data.LoadFromEnumerable(reversed)).GetColumn<float[]>("Features").ToList();
        return a.Zip(b).SelectMany(p => p.First.Zip(p.Second, (x, y) => (double)Math.Abs(x - y))).Max();
    }

    [TestMethod]
    public void FloatInputSeesTheOrderOfPositionsByDefault()
    {
        double withDefault = PermutationEffect(null);
        Assert.IsGreaterThan(1e-2, withDefault, $"max |pooled(x) - pooled(reversed x)| with the default = {withDefault:E3}");
        // The premise: without a position embedding the pooled encoding ignores the order (up to rounding).
        double without = PermutationEffect(PositionEmbedding.None);
        Assert.IsLessThan(Tolerances.ReorderedFloat32, without, $"max |pooled(x) - pooled(reversed x)| without position embedding = {without:E3}");
    }
}
