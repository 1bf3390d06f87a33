using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests;

[TestClass]
public sealed class LinformerEstimatorTests
{
    public TestContext TestContext { get; set; } = null!;

    internal const int N = 48;
    internal const int Vocabulary = 10;

    public sealed class TokenRow
    {
        [VectorType(N)] public int[] Tokens { get; set; } = Array.Empty<int>();
        public bool Label { get; set; }
    }

    public sealed class FloatRow
    {
        [VectorType(N * 2)] public float[] Values { get; set; } = Array.Empty<float>();
        [VectorType(N)] public bool[] Mask { get; set; } = Array.Empty<bool>();
        public float Target { get; set; }
    }

    public sealed class Encoded
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    /// <summary>
    /// A short task: the label is whether the first token is below 5. Not long-range: the pooled mean contains
    /// position 0 itself, so a model without attention can learn it too.
    /// </summary>
    internal static List<TokenRow> FirstTokenRows(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var tokens = Enumerable.Range(0, N).Select(_ => random.Next(Vocabulary)).ToArray();
            return new TokenRow { Tokens = tokens, Label = tokens[0] < 5 };
        }).ToList();
    }

    internal static List<FloatRow> FloatRows(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            int real = 10 + random.Next(N - 10);
            var values = Enumerable.Range(0, N * 2).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            return new FloatRow { Values = values, Mask = Enumerable.Range(0, N).Select(p => p < real).ToArray(), Target = values[0] };
        }).ToList();
    }

    private static LinformerEstimator.Options SmallTokenOptions() => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = "Label", ScoreColumnName = "Score",
        VocabularySize = Vocabulary, ModelWidth = 32, ProjectedLength = 12, Heads = 4, Depth = 1, FeedForwardSize = 64,
        Epochs = 1, BatchSize = 16, Dropout = 0.0, FeedForwardDropout = 0.0,
    };

    [TestMethod]
    public void TrainingLearnsTheFirstTokenTaskReportsEveryStepAndTheSameSeedGivesTheSameModel()
    {
        var ml = new MLContext(seed: 7);
        var train = ml.Data.LoadFromEnumerable(FirstTokenRows(600, 1));
        var test = ml.Data.LoadFromEnumerable(FirstTokenRows(200, 2));
        var options = SmallTokenOptions();
        options.Epochs = 6;
        options.LearningRate = 3e-3;
        var progress = new List<LinformerTrainingProgress>();
        options.Progress = new SyncProgress(progress.Add);
        using var model = ml.Transforms.Linformer(options).Fit(train);
        var epochEnds = progress.Where(p => p.IsEpochEnd).ToList();
        Assert.HasCount(6, epochEnds);
        CollectionAssert.AreEqual(Enumerable.Range(1, 6).ToList(), epochEnds.Select(p => p.Epoch).ToList());
        var steps = progress.Where(p => !p.IsEpochEnd).ToList();
        Assert.HasCount(6 * (600 / 16 + 1), steps, "one report per optimizer step");
        CollectionAssert.AreEqual(Enumerable.Range(1, steps.Count).Select(i => (long)i).ToList(), steps.Select(p => p.Step).ToList());
        Assert.IsTrue(steps.All(p => p.TotalSteps == steps.Count && p.ValidationLoss is null && double.IsFinite(p.TrainingLoss) && p.RowsPerSecond > 0));

        double accuracy = Accuracy(ml, model, test);
        TestContext.WriteLine($"validation accuracy after 6 epochs: {accuracy:F3} (chance 0.5)");
        Assert.IsGreaterThanOrEqualTo(0.85, accuracy, $"accuracy {accuracy:F3}");

        options.Progress = null;
        using var again = new MLContext(seed: 7).Transforms.Linformer(options).Fit(train);
        var a = Features(ml, model, test);
        var b = Features(ml, again, test);
        for (int i = 0; i < a.Count; i++) CollectionAssert.AreEqual(a[i], b[i], $"row {i}: same seed, same data must give the same model");
    }

    internal static double Accuracy(MLContext ml, LinformerTransformer model, IDataView data)
    {
        var scored = model.Transform(data);
        var predicted = scored.GetColumn<bool>("PredictedLabel").ToList();
        var labels = scored.GetColumn<bool>("Label").ToList();
        return predicted.Zip(labels).Count(p => p.First == p.Second) / (double)labels.Count;
    }

    internal static List<float[]> Features(MLContext ml, ITransformer model, IDataView data, string column = "Features")
        => model.Transform(data).GetColumn<float[]>(column).ToList();

    private sealed class SyncProgress(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
    {
        public void Report(LinformerTrainingProgress value) => report(value);
    }

    [TestMethod]
    public void PromisedSchemaEqualsDeliveredSchema()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(FirstTokenRows(40, 3));
        var estimator = ml.Transforms.Linformer(SmallTokenOptions());
        var promised = estimator.GetOutputSchema(LinformerEstimator.ShapeOf(data.Schema));
        using var model = estimator.Fit(data);
        var delivered = model.Transform(data).Schema;
        LinformerHeadTests.AssertPromisedIsDelivered(promised, delivered);
        var features = (VectorDataViewType)delivered["Features"].Type;
        Assert.AreEqual(32, features.Size);
        Assert.AreEqual(NumberDataViewType.Single, delivered["Score"].Type, "Boolean label: Score is the log-odds");
        Assert.AreEqual(delivered["Features"].Type, model.GetOutputSchema(data.Schema)["Features"].Type);
    }

    [TestMethod]
    public void BatchedTransformEqualsPredictionEngineAndTheRawModule()
    {
        var ml = new MLContext(seed: 2);
        var rows = FloatRows(37, 4);   // 37 = two full batches of 16 and a partial one
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Values", OutputColumnName = "Features", MaskColumnName = "Mask", SequenceLength = N,
            LabelColumnName = "Target", ScoreColumnName = "Score", ModelWidth = 16, ProjectedLength = 8, Heads = 2, Depth = 1, Epochs = 1,
        };
        using var model = ml.Transforms.Linformer(options).Fit(data);
        var batched = Features(ml, model, data);
        var engine = ml.Model.CreatePredictionEngine<FloatRow, Encoded>(model, new PredictionEngineOptions { OwnsTransformer = false });
        for (int i = 0; i < rows.Count; i++)
        {
            var single = engine.Predict(rows[i]).Features;
            Assert.HasCount(16, single);
            for (int j = 0; j < single.Length; j++)
                Assert.AreEqual(batched[i][j], single[j], 2e-5, $"row {i}, feature {j}: batched Transform vs PredictionEngine");
        }

        // The raw TorchSharp module on the same batch.
        using var scope = TorchSharp.torch.NewDisposeScope();
        var x = TorchSharp.torch.tensor(rows.Take(16).SelectMany(r => r.Values).ToArray(), new long[] { 16, N, 2 });
        var mask = TorchSharp.torch.tensor(rows.Take(16).SelectMany(r => r.Mask).ToArray(), new long[] { 16, N });
        using var noGrad = TorchSharp.torch.no_grad();
        var pooled = LinformerNetwork.Pool(model.Network.forward(x, mask), mask, LinformerOutputKind.MeanPooled);
        var direct = pooled.data<float>().ToArray();
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++)
                Assert.AreEqual(direct[i * 16 + j], batched[i][j], 0f, $"row {i}, feature {j}: Transform vs direct module call");
    }

    [TestMethod]
    public void PooledOutputIgnoresPadding()
    {
        var ml = new MLContext(seed: 3);
        var rows = FloatRows(8, 5);
        var changed = rows.Select(r => new FloatRow
        {
            Mask = r.Mask, Target = r.Target,
            Values = r.Values.Select((v, i) => r.Mask[i / 2] ? v : v + 1000f).ToArray(),
        }).ToList();
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Values", MaskColumnName = "Mask", SequenceLength = N, ModelWidth = 16, ProjectedLength = 8, Heads = 2, Depth = 2, Epochs = 0,
        };
        using var model = ml.Transforms.Linformer(options).Fit(ml.Data.LoadFromEnumerable(rows));
        var a = Features(ml, model, ml.Data.LoadFromEnumerable(rows));
        var b = Features(ml, model, ml.Data.LoadFromEnumerable(changed));
        for (int i = 0; i < a.Count; i++) CollectionAssert.AreEqual(a[i], b[i], $"row {i}");
    }

    [TestMethod]
    public void LinformerFeedsAStandardTrainer()
    {
        var ml = new MLContext(seed: 4);
        var train = ml.Data.LoadFromEnumerable(FirstTokenRows(600, 6));
        var test = ml.Data.LoadFromEnumerable(FirstTokenRows(200, 7));
        var options = SmallTokenOptions();
        options.ScoreColumnName = null;
        options.Epochs = 6;
        options.LearningRate = 3e-3;
        // Cache the encodings: SDCA reads its input many times.
        var pipeline = ml.Transforms.Linformer(options)
            .AppendCacheCheckpoint(ml)
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "Features"));
        var model = pipeline.Fit(train);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test), labelColumnName: "Label");
        TestContext.WriteLine($"Linformer -> SDCA: accuracy {metrics.Accuracy:F3}, AUC {metrics.AreaUnderRocCurve:F3}");
        Assert.IsGreaterThan(0.8, metrics.AreaUnderRocCurve, $"AUC {metrics.AreaUnderRocCurve:F3}");
        foreach (var t in model) (t as IDisposable)?.Dispose();
    }

    [TestMethod]
    public void SelfSupervisedTrainingRunsForTokensAndFloats()
    {
        var ml = new MLContext(seed: 5);
        var tokens = SmallTokenOptions();
        tokens.LabelColumnName = null;
        tokens.ScoreColumnName = null;
        tokens.ValidationFraction = 0.2;
        var progress = new List<LinformerTrainingProgress>();
        tokens.Progress = new SyncProgress(progress.Add);
        using (var model = ml.Transforms.Linformer(tokens).Fit(ml.Data.LoadFromEnumerable(FirstTokenRows(60, 8))))
            Assert.HasCount(32, Features(ml, model, ml.Data.LoadFromEnumerable(FirstTokenRows(3, 9)))[0]);
        Assert.IsNotNull(progress.Single(p => p.IsEpochEnd).ValidationLoss);

        var floats = new LinformerEstimator.Options
        {
            InputColumnName = "Values", MaskColumnName = "Mask", SequenceLength = N, ModelWidth = 16, ProjectedLength = 8, Heads = 2, Depth = 1, Epochs = 1,
            OutputKind = LinformerOutputKind.Sequence,
        };
        using var floatModel = ml.Transforms.Linformer(floats).Fit(ml.Data.LoadFromEnumerable(FloatRows(20, 10)));
        Assert.HasCount(N * 16, Features(ml, floatModel, ml.Data.LoadFromEnumerable(FloatRows(2, 11)))[0]);
    }
}
