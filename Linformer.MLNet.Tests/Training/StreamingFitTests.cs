using Linformer.MLNet.Data;
using Linformer.MLNet.Training;
using Microsoft.ML;

namespace Linformer.MLNet.Tests.Training;

/// <summary>
/// Fit streams: it reads training rows from the cursor batch by batch through a seeded shuffle buffer, splits off
/// validation rows by a hash of their position, and never holds more than the buffer and a batch.
/// </summary>
[TestClass]
public sealed class StreamingFitTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>Rows whose first id is their position, in memory.</summary>
    private static TrainingSet Numbered(int count, RowSelection? selection = null)
    {
        var rows = new SequenceBatch(new InputBinding("Tokens", SequenceItemKind.Int32, 2, 0, null, null), count) { Count = count };
        for (int p = 0; p < count; p++) rows.Ids![p * 2] = p;
        Array.Fill(rows.Mask, true);
        return new TrainingSet(rows, new long[count], null, selection);
    }

    /// <summary>The positions of the rows one epoch gives, in order.</summary>
    private static int[] EpochOrder(TrainingRows rows, int bufferRows, int seed, int epoch)
    {
        using var epochRows = new ShuffledRows(rows, bufferRows, seed, epoch);
        var one = new LabelledBatch(rows.Binding, 1);
        var order = new int[rows.Count];
        for (int i = 0; i < order.Length; i++)
        {
            epochRows.Fill(one, 1);
            order[i] = (int)one.Rows.Ids![0];
        }
        epochRows.CheckEnd();
        return order;
    }

    [TestMethod]
    public void EachEpochGivesEveryRowOnceInAnOrderFixedBySeedAndEpochAndMovedAtMostTheBufferSizeEarlier()
    {
        const int Rows = 50, Buffer = 8;
        var rows = Numbered(Rows);
        var first = EpochOrder(rows, Buffer, seed: 3, epoch: 1);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, Rows).ToArray(), first, "every row exactly once");
        CollectionAssert.AreEqual(first, EpochOrder(rows, Buffer, seed: 3, epoch: 1), "the order is a function of seed and epoch");
        CollectionAssert.AreNotEqual(first, EpochOrder(rows, Buffer, seed: 3, epoch: 2), "each epoch has its own order");
        CollectionAssert.AreNotEqual(first, EpochOrder(rows, Buffer, seed: 4, epoch: 1), "each seed has its own order");
        CollectionAssert.AreNotEqual(Enumerable.Range(0, Rows).ToArray(), first, "the rows are shuffled");
        // A row can only be given once it is in the buffer: the one at position p after at least p - S + 1 others.
        for (int i = 0; i < Rows; i++)
            Assert.IsLessThanOrEqualTo(i + Buffer - 1, first[i], $"row {first[i]} came out at index {i}, more than {Buffer} places early");

        // A buffer as large as the data: a full shuffle, rows move anywhere (here some row more than S places early).
        var full = EpochOrder(rows, Rows, seed: 3, epoch: 1);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, Rows).ToArray(), full);
        Assert.IsTrue(full.Select((p, i) => p - i).Max() >= Buffer, $"full shuffle: {string.Join(", ", full)}");
        Assert.AreEqual(full.Select((p, i) => p - i).Max(), EpochOrder(rows, 1000, seed: 3, epoch: 1).Select((p, i) => p - i).Max(), "a larger buffer than the data is the data's size");

        // A buffer of one row keeps the data's order.
        CollectionAssert.AreEqual(Enumerable.Range(0, Rows).ToArray(), EpochOrder(rows, 1, seed: 3, epoch: 1));
    }

    [TestMethod]
    public void TheValidationSplitAndTheShardsAreSeededFunctionsOfThePosition()
    {
        const int Rows = 2000;
        var training = new RowSelection { ValidationFraction = 0.25, Seed = 5 };
        var heldOut = training with { HeldOut = true };
        var trainRows = Enumerable.Range(0, Rows).Where(p => training.Keeps(p)).ToList();
        var heldOutRows = Enumerable.Range(0, Rows).Where(p => heldOut.Keeps(p)).ToList();
        Assert.IsEmpty(trainRows.Intersect(heldOutRows), "the sides are disjoint");
        Assert.HasCount(Rows, trainRows.Concat(heldOutRows).ToList(), "and cover every row");
        // Binomial(2000, 0.25): 500 ± 19.4; four standard deviations.
        Assert.IsLessThan(78, Math.Abs(heldOutRows.Count - 500), $"{heldOutRows.Count} held out");
        var otherSeed = Enumerable.Range(0, Rows).Where(p => (heldOut with { Seed = 6 }).Keeps(p)).ToList();
        CollectionAssert.AreNotEqual(heldOutRows, otherSeed, "another seed holds out other rows");
        // The same rows in memory and through a pass: the held-out side of a TrainingSet is exactly those positions.
        var set = Numbered(Rows, heldOut);
        Assert.AreEqual(heldOutRows.Count, set.Count);
        CollectionAssert.AreEquivalent(heldOutRows, EpochOrder(set, Rows, seed: 1, epoch: 1));

        // Shards deal the positions out (position mod count), independently of the split.
        var shards = Enumerable.Range(0, 3).Select(i => Enumerable.Range(0, Rows).Where(p => (training with { ShardIndex = i, ShardCount = 3 }).Keeps(p)).ToList()).ToList();
        CollectionAssert.AreEquivalent(trainRows, shards.SelectMany(s => s).ToList(), "the shards together are the training side");
        for (int i = 0; i < 3; i++) Assert.IsTrue(shards[i].All(p => p % 3 == i), $"shard {i} holds positions {i} mod 3");
    }

    [TestMethod]
    public void FitReadsTheCursorLazilyHoldingAtMostTheBufferAndABatch()
    {
        const int Rows = 160, Buffer = 8, Batch = 4;
        var ml = new MLContext(seed: 2);
        var data = new GeneratedTokenRows(Rows, sequenceLength: 8, vocabulary: 8);
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", LabelColumnName = "Label", VocabularySize = 8, ModelWidth = 8, ProjectedLength = 4, Heads = 2,
            Depth = 1, FeedForwardSize = 16, Epochs = 1, BatchSize = Batch, ShuffleBufferSize = Buffer, ValidationFraction = 0.25,
        };
        var readAtStep = new List<(long Step, long Read)>();
        options.Progress = new Progress(p => { if (!p.IsEpochEnd) readAtStep.Add((p.Step, data.TokenRowsReadByNewestCursor)); });
        using var model = ml.Transforms.Linformer(options).Fit(data);

        Assert.IsGreaterThan(20, readAtStep.Count, "training took many steps");
        foreach (var (step, read) in readAtStep)
            Assert.IsLessThanOrEqualTo(Buffer + step * Batch, read, $"after step {step} the epoch's cursor had read {read} rows: more than the buffer ({Buffer}) and the rows trained on ({step * Batch})");
        long trained = readAtStep[^1].Step * Batch;
        TestContext.WriteLine($"{readAtStep.Count} steps; rows read by the training cursor: {string.Join(", ", readAtStep.Take(8).Select(r => r.Read))} ...; training rows ≤ {trained}, all rows read {data.TokenRowsRead}");
        // Each row's values were read once for training and once for validation (held-out rows are not read in the
        // training pass); the row count came from a pass that read no values.
        Assert.AreEqual(Rows, data.TokenRowsRead, "every row read exactly once");
    }

    [TestMethod]
    public void DataThatChangesBetweenPassesIsAnError()
    {
        var ml = new MLContext(seed: 2);
        // The counting pass sees 40 rows, the first epoch's pass 30.
        var data = new GeneratedTokenRows(40, sequenceLength: 8, vocabulary: 8, rowsOfPass: pass => pass == 0 ? 40 : 30);
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", LabelColumnName = "Label", VocabularySize = 8, ModelWidth = 8, ProjectedLength = 4, Heads = 2,
            Depth = 1, FeedForwardSize = 16, Epochs = 1, BatchSize = 4,
        };
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.Linformer(options).Fit(data));
        TestContext.WriteLine(ex.Message);
        StringAssert.Contains(ex.Message, "gave 30 row(s)");
        StringAssert.Contains(ex.Message, "but 40 when it was counted");
        StringAssert.Contains(ex.Message, "'Tokens'");
    }

    [TestMethod]
    public void TheDefaultShuffleBufferHolds7281RowsOf512Tokens()
    {
        // docs/memory.md and the option's documentation: 32 MiB of rows; a row of 512 tokens is 512 ids and 512 mask bytes.
        var binding = new InputBinding("Tokens", SequenceItemKind.Int32, 512, 0, null, null);
        Assert.AreEqual(4608, SequenceBatch.BytesPerRow(binding));
        Assert.AreEqual(7281, LinformerEstimator.Defaults.ShuffleBufferBytes / SequenceBatch.BytesPerRow(binding));
    }

    [TestMethod]
    public void ANegativeShuffleBufferSizeIsRejected()
    {
        var options = new LinformerEstimator.Options { InputColumnName = "Tokens", ShuffleBufferSize = -1 };
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new MLContext(seed: 1).Transforms.Linformer(options));
        Assert.AreEqual("ShuffleBufferSize", ex.ParamName);
        StringAssert.Contains(ex.Message, "ShuffleBufferSize (-1) must be >= 0");
    }

    [TestMethod]
    public void AValidationFractionThatLeavesASideEmptyNamesBothCounts()
    {
        var ml = new MLContext(seed: 2);
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", LabelColumnName = "Label", VocabularySize = 8, ModelWidth = 8, ProjectedLength = 4, Heads = 2,
            Depth = 1, FeedForwardSize = 16, Epochs = 1, BatchSize = 4, ValidationFraction = 0.001,
        };
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(options).Fit(new GeneratedTokenRows(3, 8, 8)));
        TestContext.WriteLine(ex.Message);
        Assert.AreEqual("ValidationFraction", ex.ParamName);
        StringAssert.Contains(ex.Message, "leaves 3 training and 0 validation rows out of 3");
    }

    private sealed class Progress(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
    {
        public void Report(LinformerTrainingProgress value) => report(value);
    }
}
