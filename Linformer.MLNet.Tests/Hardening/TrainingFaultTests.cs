using Microsoft.ML;

namespace Linformer.MLNet.Tests.Hardening;

[TestClass]
public sealed class TrainingFaultTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Progress(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
    {
        public void Report(LinformerTrainingProgress value) => report(value);
    }

    /// <summary>
    /// Self-supervised (masking generator), dropout (global generator), validation with early stopping (best snapshot),
    /// and a shuffle buffer smaller than the data, so a resumed epoch re-creates a streamed order and skips into it.
    /// </summary>
    private static LinformerEstimator.Options ResumableOptions() => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", VocabularySize = Tiny.Vocabulary, ModelWidth = 8,
        ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16, Epochs = 3, BatchSize = 4, Dropout = 0.2,
        FeedForwardDropout = 0.2, ValidationFraction = 0.25, EarlyStoppingPatience = 3, LearningRate = 3e-3, ShuffleBufferSize = 6,
    };

    [TestMethod]
    public void CancelledFitReturnsNothingWritesNothingAndLeavesTheInitialModelUnchanged()
    {
        var ml = new MLContext(seed: 4);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(24, 1));
        using var initial = Tiny.Fit(ml, data, Tiny.Options(epochs: 1));
        var before = Tiny.Weights(initial);
        var folder = Directory.CreateTempSubdirectory("linformer-cancel-");
        try
        {
            using var cts = new CancellationTokenSource();
            var options = Tiny.Options(epochs: 3);
            options.InitialModel = initial;
            options.CancellationToken = cts.Token;
            options.CheckpointPath = Path.Combine(folder.FullName, "late.ckpt");
            options.CheckpointInterval = 100;                      // later than the cancellation
            long lastStep = 0;
            options.Progress = new Progress(p => { lastStep = p.Step; if (p.Step == 5) cts.Cancel(); });
            LinformerTransformer? result = null;
            Assert.ThrowsExactly<OperationCanceledException>(() => result = ml.Transforms.Linformer(options).Fit(data));
            Assert.IsNull(result);
            Assert.AreEqual(5, lastStep, "training stopped before the next batch");
            Assert.IsEmpty(folder.GetFileSystemInfos(), "no checkpoint was due, so nothing is written (no temporary files either)");
            Tiny.AssertSameWeights(before, Tiny.Weights(initial), "the initial model after a cancelled Fit");
            Assert.HasCount(24, Tiny.Features(initial, data), "the initial model still works");
        }
        finally { folder.Delete(recursive: true); }
    }

    [TestMethod]
    public void ResumingFromACheckpointGivesBitIdenticalWeights()
    {
        var ml = new MLContext(seed: 6);
        var rows = Tiny.Rows(24, 2).ToList();          // 18 training rows: 5 steps per epoch, the last one partial
        var data = ml.Data.LoadFromEnumerable(rows);
        var folder = Directory.CreateTempSubdirectory("linformer-checkpoint-");
        try
        {
            // A: uninterrupted.
            var a = ResumableOptions();
            Dictionary<string, byte[]> expected;
            using (var model = new MLContext(seed: 6).Transforms.Linformer(a).Fit(data)) expected = Tiny.Weights(model);

            // B: checkpoints every 3 steps, cancelled after step 6 (epoch 2, after epoch 1's validation snapshot) ...
            var checkpoint = Path.Combine(folder.FullName, "run.ckpt");
            using var cts = new CancellationTokenSource();
            var b = ResumableOptions();
            b.CheckpointPath = checkpoint;
            b.CheckpointInterval = 3;
            b.CancellationToken = cts.Token;
            b.Progress = new Progress(p => { if (p.Step == 6 && !p.IsEpochEnd) cts.Cancel(); });
            Assert.ThrowsExactly<OperationCanceledException>(() => new MLContext(seed: 6).Transforms.Linformer(b).Fit(data));
            Assert.IsTrue(File.Exists(checkpoint));
            CollectionAssert.AreEqual(new[] { "run.ckpt" }, folder.GetFiles().Select(f => f.Name).ToArray(), "no temporary files are left");

            // ... then resumed in a fresh context: the same final weights, bit for bit.
            var resumed = ResumableOptions();
            resumed.CheckpointPath = checkpoint;
            resumed.ResumeFromCheckpoint = true;
            var steps = new List<long>();
            resumed.Progress = new Progress(p => { if (!p.IsEpochEnd) steps.Add(p.Step); });
            using (var model = new MLContext(seed: 6).Transforms.Linformer(resumed).Fit(data))
                Tiny.AssertSameWeights(expected, Tiny.Weights(model), "resumed at step 6 vs uninterrupted");
            Assert.AreEqual(7, steps.First(), "training continued with step 7");

            // Resuming with other options or data is refused, naming what differs.
            var other = ResumableOptions();
            other.CheckpointPath = checkpoint;
            other.ResumeFromCheckpoint = true;
            other.BatchSize = 3;
            other.LearningRate = 1e-3;
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext(seed: 6).Transforms.Linformer(other).Fit(data));
            TestContext.WriteLine(ex.Message);
            StringAssert.Contains(ex.Message, checkpoint);
            StringAssert.Contains(ex.Message, "BatchSize: checkpoint 4, this Fit 3");
            StringAssert.Contains(ex.Message, "LearningRate: checkpoint 0.003, this Fit 0.001");
            var otherData = ResumableOptions();
            otherData.CheckpointPath = checkpoint;
            otherData.ResumeFromCheckpoint = true;
            ex = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext(seed: 6).Transforms.Linformer(otherData).Fit(ml.Data.LoadFromEnumerable(Tiny.Rows(24, 3))));
            TestContext.WriteLine(ex.Message);
            StringAssert.Contains(ex.Message, "training data SHA-256");
            ex = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext(seed: 7).Transforms.Linformer(resumed).Fit(data));
            StringAssert.Contains(ex.Message, "Seed: checkpoint 6, this Fit 7");

            // A damaged checkpoint is an error naming the file, never a silently different model.
            var bytes = File.ReadAllBytes(checkpoint);
            bytes[bytes.Length / 2] ^= 0x5A;
            File.WriteAllBytes(checkpoint, bytes);
            var bad = Assert.ThrowsExactly<InvalidDataException>(() => new MLContext(seed: 6).Transforms.Linformer(resumed).Fit(data));
            TestContext.WriteLine(bad.Message);
            StringAssert.Contains(bad.Message, checkpoint);
            StringAssert.Contains(bad.Message, "SHA-256");
            File.WriteAllBytes(checkpoint, bytes.AsSpan(0, 100).ToArray());
            bad = Assert.ThrowsExactly<InvalidDataException>(() => new MLContext(seed: 6).Transforms.Linformer(resumed).Fit(data));
            StringAssert.Contains(bad.Message, checkpoint);
            File.WriteAllText(checkpoint, "not a checkpoint");
            bad = Assert.ThrowsExactly<InvalidDataException>(() => new MLContext(seed: 6).Transforms.Linformer(resumed).Fit(data));
            StringAssert.Contains(bad.Message, "LINFCKPT");
        }
        finally { folder.Delete(recursive: true); }
    }

    [TestMethod]
    public void ResumeWithoutACheckpointFileTrainsFromTheStart()
    {
        var ml = new MLContext(seed: 6);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(16, 2));
        var folder = Directory.CreateTempSubdirectory("linformer-checkpoint-");
        try
        {
            var plain = Tiny.Options(epochs: 1);
            Dictionary<string, byte[]> expected;
            using (var model = new MLContext(seed: 6).Transforms.Linformer(plain).Fit(data)) expected = Tiny.Weights(model);
            var resume = Tiny.Options(epochs: 1);
            resume.CheckpointPath = Path.Combine(folder.FullName, "none-yet.ckpt");
            resume.ResumeFromCheckpoint = true;
            resume.CheckpointInterval = 2;
            using (var model = new MLContext(seed: 6).Transforms.Linformer(resume).Fit(data))
                Tiny.AssertSameWeights(expected, Tiny.Weights(model), "writing checkpoints does not change training");
            Assert.IsTrue(File.Exists(resume.CheckpointPath));
        }
        finally { folder.Delete(recursive: true); }
    }

    [TestMethod]
    public void CheckpointOptionsAreValidated()
    {
        var ml = new MLContext(seed: 6);
        var o = Tiny.Options();
        o.CheckpointInterval = -1;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(o));
        o = Tiny.Options();
        o.CheckpointInterval = 5;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(o)).Message, "CheckpointPath");
        o = Tiny.Options();
        o.ResumeFromCheckpoint = true;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(o)).Message, "CheckpointPath");
        o = Tiny.Options();
        o.CheckpointPath = Path.Combine(Path.GetTempPath(), "no-such-folder-" + Guid.NewGuid().ToString("N"), "x.ckpt");
        o.CheckpointInterval = 1;
        StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => ml.Transforms.Linformer(o)).Message, "no-such-folder-");
    }

    [TestMethod]
    public void ALossThatStopsBeingFiniteNamesTheStep()
    {
        var ml = new MLContext(seed: 6);
        var o = Tiny.Options(epochs: 2);
        o.LearningRate = 1e30;
        o.GradientClipNorm = 0;
        o.WarmupFraction = 0;
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(Tiny.Rows(40, 2))));
        TestContext.WriteLine(ex.Message);
        StringAssert.Matches(ex.Message, new System.Text.RegularExpressions.Regex(@"Training stopped at step \d+ \(epoch \d\): the loss became (NaN|-?∞|-?Infinity)"));
        StringAssert.Contains(ex.Message, "Lower LearningRate");
    }
}
