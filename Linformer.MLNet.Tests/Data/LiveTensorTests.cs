using Linformer.MLNet.Modules;
using Linformer.MLNet.Model;
using Microsoft.ML;
using TorchSharp;
using static Linformer.MLNet.Tests.Data.InputConfigurations;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// Leak statistics over every attention path: TorchSharp's per-thread live-tensor count
/// (<c>DisposeScopeManager.Statistics.ThreadTotalLiveCount</c>) after forwards, <c>Transform</c> and
/// <c>PredictionEngine</c> for every <see cref="ParameterSharing"/> × <see cref="ProjectionMethod"/> × mask, and full
/// attention, for token and float input.
/// </summary>
[TestClass]
public sealed class LiveTensorTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed record AttentionPath(bool Tokens, bool Masked, bool FullAttention, ParameterSharing Sharing, ProjectionMethod Method)
    {
        public override string ToString() => $"{(Tokens ? "tokens" : "floats")}, {(Masked ? "masked" : "unmasked")}, "
            + (FullAttention ? "full attention" : $"{Sharing} sharing, {Method} projection");
    }

    private static IEnumerable<AttentionPath> Paths()
    {
        foreach (bool tokens in new[] { true, false })
            foreach (bool masked in new[] { false, true })
            {
                foreach (var sharing in Enum.GetValues<ParameterSharing>())
                    foreach (var method in Enum.GetValues<ProjectionMethod>())
                        yield return new AttentionPath(tokens, masked, false, sharing, method);
                yield return new AttentionPath(tokens, masked, true, ParameterSharing.Layerwise, ProjectionMethod.Learnable);
            }
    }

    private static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    [TestMethod]
    public void EveryAttentionPathReturnsTheLiveTensorCountToItsStart()
    {
        var rows = Rows(10, 7);   // every row padded (used only where the path is masked)
        var paths = Paths().ToList();
        Assert.HasCount(2 * 2 * (4 * 3 + 1), paths);
        using var oneThread = OneIntraOpThread();
        foreach (var path in paths)
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(rows);
            var options = new LinformerEstimator.Options
            {
                InputColumnName = path.Tokens ? nameof(Row.Int32Tokens) : nameof(Row.Values),
                MaskColumnName = path.Masked && !path.Tokens ? nameof(Row.Mask) : null,
                PaddingTokenId = path.Masked && path.Tokens ? PaddingId : null,
                VocabularySize = path.Tokens ? Vocabulary : 0, SequenceLength = path.Tokens ? 0 : N,
                LabelColumnName = nameof(Row.Target), ScoreColumnName = "Score",
                ModelWidth = Width, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16, BatchSize = 4, Epochs = 0,
                Sharing = path.Sharing, ProjectionMethod = path.Method, FullAttention = path.FullAttention,
                Dropout = 0.1, FeedForwardDropout = 0.1,
            };
            long start = Live();
            var model = ml.Transforms.Linformer(options).Fit(data);
            long withModel = Live();
            Assert.IsGreaterThan(start, withModel, $"{path}: the weights are live tensors");

            // Forwards without any outer dispose scope: only the results stay live, in eval and in training mode.
            var network = model.Network;
            using (var input = path.Tokens
                       ? torch.tensor(rows.Take(4).SelectMany(r => r.Int64Tokens).ToArray(), new long[] { 4, N })
                       : torch.tensor(rows.Take(4).SelectMany(r => r.Values).ToArray(), new long[] { 4, N, Channels }))
            using (var mask = path.Masked ? torch.tensor(rows.Take(4).SelectMany(r => r.Mask).ToArray(), new long[] { 4, N }) : null)
            {
                long before = Live();
                using (torch.no_grad())
                    for (int i = 0; i < 3; i++)
                    {
                        using var encoded = network.forward(input, mask);
                        using var pooled = LinformerNetwork.Pool(encoded, mask, LinformerOutputKind.MeanPooled);
                        using var head = network.Head(encoded, mask);
                    }
                Assert.AreEqual(before, Live(), $"{path}: forwards in eval mode left live tensors");
                network.train();
                try
                {
                    using var encoded = network.forward(input, mask);   // dropout on, gradients recorded
                    using var head = network.Head(encoded, mask);
                }
                finally { network.eval(); }
                Assert.AreEqual(before, Live(), $"{path}: a forward in training mode left live tensors");
            }

            // Transform, read to the end twice (batches of 4: two full, one partial), and a PredictionEngine.
            for (int pass = 0; pass < 2; pass++)
            {
                var output = model.Transform(data);
                using var cursor = output.GetRowCursor(output.Schema);
                var features = cursor.GetGetter<Microsoft.ML.Data.VBuffer<float>>(output.Schema["Features"]);
                var score = cursor.GetGetter<float>(output.Schema["Score"]);
                var value = default(Microsoft.ML.Data.VBuffer<float>);
                float s = 0;
                while (cursor.MoveNext()) { features(ref value); score(ref s); }
            }
            using (var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model, new PredictionEngineOptions { OwnsTransformer = false }))
                foreach (var row in rows.Take(3)) engine.Predict(row);
            Assert.AreEqual(withModel, Live(), $"{path}: Transform and PredictionEngine left live tensors");

            model.Dispose();
            Assert.AreEqual(start, Live(), $"{path}: disposing the transformer did not free every tensor");
        }
        TestContext.WriteLine($"{paths.Count} paths: live tensors back to the start after forwards, Transform, PredictionEngine and Dispose");
    }
}
