using Linformer.MLNet.Tests.Hardening;
using Microsoft.ML;
using TorchSharp;

namespace Linformer.MLNet.Tests.Training;

/// <summary>
/// <see cref="LinformerEstimator.Options.GradientAccumulationSteps"/>: several batches summed into one optimizer step make
/// the update of one large batch (dropout 0: dropout masks would differ between the two runs).
/// </summary>
[TestClass]
public sealed class GradientAccumulationTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Progress(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
    {
        public void Report(LinformerTrainingProgress value) => report(value);
    }

    /// <summary>76 rows: per epoch two full steps of 32 rows and a last step of 12 (one batch of 8 and one of 4 when accumulating).</summary>
    private static LinformerEstimator.Options Options(int batchSize, int accumulation) => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = "Label",
        VocabularySize = Tiny.Vocabulary, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16,
        Dropout = 0, FeedForwardDropout = 0, Epochs = 2, BatchSize = batchSize, GradientAccumulationSteps = accumulation,
        LearningRate = 1e-2, WarmupFraction = 0.3, LearningRateDecay = LearningRateDecay.Linear,
        GradientClipNorm = 0.05,   // small enough to clip every step: clipping must see the summed gradient
    };

    private static Dictionary<string, float[]> Weights(LinformerTransformer model)
    {
        using var scope = torch.NewDisposeScope();
        return model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.cpu().to(torch.float32).contiguous().data<float>().ToArray());
    }

    private static double MaxDifference(Dictionary<string, float[]> a, Dictionary<string, float[]> b)
    {
        CollectionAssert.AreEquivalent(a.Keys.ToList(), b.Keys.ToList());
        return a.Max(kv => kv.Value.Zip(b[kv.Key], (x, y) => Math.Abs((double)x - y)).DefaultIfEmpty(0).Max());
    }

    private static (Dictionary<string, float[]> Weights, List<LinformerTrainingProgress> Reports) Train(IDataView data, LinformerEstimator.Options options)
    {
        var reports = new List<LinformerTrainingProgress>();
        options.Progress = new Progress(reports.Add);
        using var model = new MLContext(seed: 5).Transforms.Linformer(options).Fit(data);
        return (Weights(model), reports);
    }

    [TestMethod]
    public void FourBatchesOfEightMakeTheSameUpdatesAsOneBatchOfThirtyTwo()
    {
        var data = new MLContext(seed: 5).Data.LoadFromEnumerable(Tiny.Rows(76, 8).ToList());
        var (large, largeReports) = Train(data, Options(batchSize: 32, accumulation: 1));
        var (accumulated, accumulatedReports) = Train(data, Options(batchSize: 8, accumulation: 4));
        var (small, _) = Train(data, Options(batchSize: 8, accumulation: 1));

        double difference = MaxDifference(large, accumulated);
        double control = MaxDifference(large, small);
        TestContext.WriteLine($"max |weight difference| after 6 steps: 4 x 8 accumulated vs 32: {difference:E2}; 8 without accumulation vs 32: {control:E2}");
        Assert.IsLessThanOrEqualTo(1e-5, difference, "4 x 8 accumulated vs one batch of 32");
        Assert.IsGreaterThan(1e-3, control, "batches of 8 without accumulation train differently, so the comparison means something");

        // Progress, the schedule and checkpoints count optimizer steps: 3 per epoch in both runs.
        var steps = accumulatedReports.Where(p => !p.IsEpochEnd).Select(p => p.Step).ToList();
        CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4, 5, 6 }, steps);
        Assert.IsTrue(accumulatedReports.All(p => p.TotalSteps == 6));
        var largeLosses = largeReports.Select(p => p.TrainingLoss).ToList();
        var accumulatedLosses = accumulatedReports.Select(p => p.TrainingLoss).ToList();
        Assert.HasCount(largeLosses.Count, accumulatedLosses);
        for (int i = 0; i < largeLosses.Count; i++)
            Assert.AreEqual(largeLosses[i], accumulatedLosses[i], 1e-5, $"training loss of report {i} (mean over the epoch's rows so far)");
    }

    [TestMethod]
    public void AnAccumulatedRunResumesBitIdenticallyFromACheckpointBetweenOptimizerSteps()
    {
        var data = new MLContext(seed: 5).Data.LoadFromEnumerable(Tiny.Rows(76, 9).ToList());
        var folder = Directory.CreateTempSubdirectory("linformer-accumulation-");
        try
        {
            var (expected, _) = Train(data, Options(batchSize: 8, accumulation: 4));
            var checkpoint = Path.Combine(folder.FullName, "run.ckpt");
            using var cts = new CancellationTokenSource();
            var interrupted = Options(batchSize: 8, accumulation: 4);
            interrupted.CheckpointPath = checkpoint;
            interrupted.CheckpointInterval = 2;   // after step 2: mid-epoch, 64 of 76 rows read
            interrupted.CancellationToken = cts.Token;
            interrupted.Progress = new Progress(p => { if (p.Step == 2) cts.Cancel(); });
            Assert.ThrowsExactly<OperationCanceledException>(() => new MLContext(seed: 5).Transforms.Linformer(interrupted).Fit(data));

            var resumed = Options(batchSize: 8, accumulation: 4);
            resumed.CheckpointPath = checkpoint;
            resumed.ResumeFromCheckpoint = true;
            var (actual, reports) = Train(data, resumed);
            Assert.AreEqual(3, reports.First().Step, "training continued with optimizer step 3");
            foreach (var (name, values) in expected)
                CollectionAssert.AreEqual(values, actual[name], $"tensor '{name}' after resuming");

            var other = Options(batchSize: 8, accumulation: 2);
            other.CheckpointPath = checkpoint;
            other.ResumeFromCheckpoint = true;
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext(seed: 5).Transforms.Linformer(other).Fit(data));
            StringAssert.Contains(ex.Message, "GradientAccumulationSteps: checkpoint 4, this Fit 2");
        }
        finally { folder.Delete(recursive: true); }
    }

    [TestMethod]
    public void GradientAccumulationStepsMustBePositive()
    {
        var options = Options(batchSize: 8, accumulation: 0);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new MLContext().Transforms.Linformer(options));
        Assert.AreEqual("GradientAccumulationSteps", ex.ParamName);
        StringAssert.Contains(ex.Message, "GradientAccumulationSteps (0) must be positive");
    }
}
