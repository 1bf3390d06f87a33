using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests;

/// <summary>
/// The supervised head's outputs follow ML.NET's trainer conventions for each label kind, so ML.NET's evaluators
/// score them directly; Key labels work inside estimator chains; the promised schema is the delivered one;
/// Transform, PredictionEngine and a saved and reloaded model agree.
/// </summary>
[TestClass]
public sealed class LinformerHeadTests
{
    public TestContext TestContext { get; set; } = null!;

    private const int N = 16;
    private const int Vocabulary = 12;
    private static readonly string[] Colours = { "red", "green", "blue" };

    public sealed class ColourRow
    {
        [VectorType(N)] public int[] Tokens { get; set; } = new int[N];
        public string Colour { get; set; } = "";
        public bool IsRed { get; set; }
        public float Redness { get; set; }
    }

    public sealed class KeyRow
    {
        [VectorType(N)] public int[] Tokens { get; set; } = new int[N];
        [KeyType(3)] public uint Label { get; set; }
    }

    /// <summary>Class c draws about half of its tokens from its own four ids 4c … 4c+3, the rest uniformly: a task a
    /// tiny model learns in a few epochs. Redness is the share of red tokens (ids 0 … 3).</summary>
    private static List<ColourRow> Rows(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            int c = random.Next(3);
            var tokens = Enumerable.Range(0, N).Select(_ => random.NextDouble() < 0.5 ? 4 * c + random.Next(4) : random.Next(Vocabulary)).ToArray();
            return new ColourRow { Tokens = tokens, Colour = Colours[c], IsRed = c == 0, Redness = tokens.Count(t => t < 4) / (float)N };
        }).ToList();
    }

    private static LinformerEstimator.Options Options(string label) => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = label, ScoreColumnName = "Score",
        VocabularySize = Vocabulary, ModelWidth = 16, ProjectedLength = 8, Heads = 2, Depth = 1, FeedForwardSize = 32,
        Epochs = 4, BatchSize = 16, LearningRate = 3e-3, Dropout = 0, FeedForwardDropout = 0,
    };

    [TestMethod]
    public void KeyLabelFromMapValueToKeyTrainsInAChainAndMulticlassEvaluateScoresTheHead()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(240, 1));
        var test = ml.Data.LoadFromEnumerable(Rows(90, 2));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", "Colour").Append(ml.Transforms.Linformer(Options("Label")));
        var promised = pipeline.GetOutputSchema(LinformerEstimator.ShapeOf(train.Schema));
        using var model = pipeline.Fit(train);
        var scored = model.Transform(test);
        AssertPromisedIsDelivered(promised, scored.Schema);

        var metrics = ml.MulticlassClassification.Evaluate(scored);
        TestContext.WriteLine($"multiclass head: micro accuracy {metrics.MicroAccuracy:F3}, macro {metrics.MacroAccuracy:F3}, log-loss {metrics.LogLoss:F3}");
        Assert.IsGreaterThanOrEqualTo(0.9, metrics.MicroAccuracy, "micro accuracy");

        // Score: the class probabilities, named by the label's key values; PredictedLabel: their most probable class.
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3), scored.Schema["Score"].Type);
        var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
        model.Transform(train).Schema["Label"].GetKeyValues(ref keyValues);
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["Score"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(keyValues.DenseValues().Select(v => v.ToString()).ToList(), slotNames.DenseValues().Select(v => v.ToString()).ToList());
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 3), scored.Schema["PredictedLabel"].Type);
        var scores = scored.GetColumn<float[]>("Score").ToList();
        var predicted = scored.GetColumn<uint>("PredictedLabel").ToList();
        for (int i = 0; i < scores.Count; i++)
        {
            Assert.AreEqual(1.0, scores[i].Sum(), 1e-5, $"row {i}: probabilities sum to 1");
            Assert.AreEqual((uint)(Array.IndexOf(scores[i], scores[i].Max()) + 1), predicted[i], $"row {i}: PredictedLabel is the most probable class");
        }

        // MapKeyToValue turns the prediction back into the label's own values.
        var names = ml.Transforms.Conversion.MapKeyToValue("PredictedColour", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<ReadOnlyMemory<char>>("PredictedColour").Select(v => v.ToString()).ToList();
        var slots = slotNames.DenseValues().Select(v => v.ToString()).ToList();
        CollectionAssert.AreEqual(predicted.Select(k => slots[(int)k - 1]).ToList(), names);

        AssertAnnotations(scored.Schema["Score"], "MulticlassClassification", "Score");
        AssertAnnotations(scored.Schema["PredictedLabel"], "MulticlassClassification", "PredictedLabel");
        AssertEngineAndReloadAgree<MulticlassPrediction>(ml, model, train.Schema, test,
            (p, row) =>
            {
                Assert.HasCount(3, p.Score);
                for (int c = 0; c < 3; c++) Assert.AreEqual(scores[row][c], p.Score[c], Tolerances.ReorderedFloat32, $"row {row}, class {c}: Score");
                Assert.AreEqual(predicted[row], p.PredictedLabel, $"row {row}: PredictedLabel");
            },
            "Score", "PredictedLabel");
    }

    public sealed class MulticlassPrediction
    {
        public float[] Score { get; set; } = [];
        public uint PredictedLabel { get; set; }
    }

    [TestMethod]
    public void KeyLabelLoadedWithKeyTypeTrainsInAnEstimatorChainWithoutKeyValues()
    {
        var ml = new MLContext(seed: 2);
        var rows = Rows(240, 3).Select(r => new KeyRow { Tokens = r.Tokens, Label = (uint)Array.IndexOf(Colours, r.Colour) + 1 }).ToList();
        var train = ml.Data.LoadFromEnumerable(rows);
        // EstimatorChain.Fit propagates ML.NET's own SchemaShape through GetOutputSchema before fitting.
        var pipeline = new EstimatorChain<ITransformer>().Append(ml.Transforms.Linformer(Options("Label")));
        using var model = pipeline.Fit(train);
        var scored = model.Transform(train);
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 3), scored.Schema["PredictedLabel"].Type);
        Assert.IsNull(scored.Schema["PredictedLabel"].Annotations.Schema.GetColumnOrNull("KeyValues"), "the label had no key values");
        Assert.IsNull(scored.Schema["Score"].Annotations.Schema.GetColumnOrNull("SlotNames"));
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.IsGreaterThanOrEqualTo(0.9, metrics.MicroAccuracy, "training-set micro accuracy");
    }

    [TestMethod]
    public void BooleanLabelGivesLogOddsProbabilityAndPredictedLabelThatBinaryEvaluateScores()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(Rows(240, 4));
        var test = ml.Data.LoadFromEnumerable(Rows(90, 5));
        var estimator = ml.Transforms.Linformer(Options("IsRed"));
        var promised = estimator.GetOutputSchema(LinformerEstimator.ShapeOf(train.Schema));
        using var model = estimator.Fit(train);
        var scored = model.Transform(test);
        AssertPromisedIsDelivered(promised, scored.Schema);

        var metrics = ml.BinaryClassification.Evaluate(scored, labelColumnName: "IsRed");
        TestContext.WriteLine($"binary head: accuracy {metrics.Accuracy:F3}, AUC {metrics.AreaUnderRocCurve:F3}, log-loss {metrics.LogLoss:F3}");
        Assert.IsGreaterThanOrEqualTo(0.9, metrics.Accuracy, "accuracy");
        Assert.IsGreaterThanOrEqualTo(0.95, metrics.AreaUnderRocCurve, "AUC");

        Assert.AreEqual(NumberDataViewType.Single, scored.Schema["Score"].Type);
        Assert.AreEqual(NumberDataViewType.Single, scored.Schema["Probability"].Type);
        Assert.AreEqual(BooleanDataViewType.Instance, scored.Schema["PredictedLabel"].Type);
        var score = scored.GetColumn<float>("Score").ToList();
        var probability = scored.GetColumn<float>("Probability").ToList();
        var predicted = scored.GetColumn<bool>("PredictedLabel").ToList();
        // The head's own two logits, from the network directly: Probability is softmax(logits)[true], Score log(p₁/p₀).
        var rows = ml.Data.CreateEnumerable<ColourRow>(test, reuseRowObject: false).ToList();
        float[] logits;
        using (var scope = TorchSharp.torch.NewDisposeScope())
        using (var noGrad = TorchSharp.torch.no_grad())
        {
            var ids = TorchSharp.torch.tensor(rows.SelectMany(r => r.Tokens.Select(t => (long)t)).ToArray(), new long[] { rows.Count, N });
            logits = model.Network.Head(model.Network.forward(ids, null), null).data<float>().ToArray();   // (B, 2)
        }
        for (int i = 0; i < score.Count; i++)
        {
            double z0 = logits[2 * i], z1 = logits[2 * i + 1];
            Assert.AreEqual(z1 - z0, score[i], Tolerances.ReorderedFloat32, $"row {i}: Score is the log-odds logit(true) - logit(false)");
            Assert.AreEqual(Math.Exp(z1) / (Math.Exp(z0) + Math.Exp(z1)), probability[i], Tolerances.ReorderedFloat32, $"row {i}: Probability is P(true)");
            Assert.AreEqual(Math.Log(probability[i] / (1.0 - probability[i])), score[i], 1e-3, $"row {i}: Score is the log-odds of Probability");
            Assert.AreEqual(score[i] > 0, predicted[i], $"row {i}: PredictedLabel is Score > 0");
        }
        AssertAnnotations(scored.Schema["Score"], "BinaryClassification", "Score");
        AssertAnnotations(scored.Schema["Probability"], "BinaryClassification", "Probability");
        AssertAnnotations(scored.Schema["PredictedLabel"], "BinaryClassification", "PredictedLabel");
        bool normalized = false;
        scored.Schema["Probability"].Annotations.GetValue("IsNormalized", ref normalized);
        Assert.IsTrue(normalized);

        AssertEngineAndReloadAgree<BinaryPrediction>(ml, model, train.Schema, test, (p, row) =>
        {
            Assert.AreEqual(score[row], p.Score, Tolerances.ReorderedFloat32, $"row {row}: Score");
            Assert.AreEqual(probability[row], p.Probability, Tolerances.ReorderedFloat32, $"row {row}: Probability");
            Assert.AreEqual(predicted[row], p.PredictedLabel, $"row {row}: PredictedLabel");
        }, "Score", "Probability", "PredictedLabel");
    }

    public sealed class BinaryPrediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    [TestMethod]
    public void HeadColumnNamesFollowTheOptionsAndNullLeavesAColumnOut()
    {
        var ml = new MLContext(seed: 4);
        var train = ml.Data.LoadFromEnumerable(Rows(60, 6));
        var options = Options("IsRed");
        options.Epochs = 1;
        options.ScoreColumnName = "HeadScore";
        options.ProbabilityColumnName = "HeadProbability";
        options.PredictedLabelColumnName = "HeadPredictedLabel";
        using (var model = ml.Transforms.Linformer(options).Fit(train))
        {
            var scored = model.Transform(train);
            Assert.IsNull(scored.Schema.GetColumnOrNull("Score"));
            Assert.AreEqual("HeadProbability", model.ProbabilityColumnName);
            var metrics = ml.BinaryClassification.Evaluate(scored, "IsRed", "HeadScore", "HeadProbability", "HeadPredictedLabel");
            Assert.IsTrue(metrics.Accuracy is >= 0 and <= 1);
        }
        options.ProbabilityColumnName = null;
        using (var model = ml.Transforms.Linformer(options).Fit(train))
        {
            var scored = model.Transform(train);
            Assert.IsNull(scored.Schema.GetColumnOrNull("HeadProbability"));
            Assert.IsNull(model.ProbabilityColumnName);
            Assert.IsNotNull(scored.Schema.GetColumnOrNull("HeadPredictedLabel"));
            ml.BinaryClassification.EvaluateNonCalibrated(scored, "IsRed", "HeadScore", "HeadPredictedLabel");
        }
    }

    [TestMethod]
    public void SingleLabelGivesAScoreThatRegressionEvaluateScores()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(Rows(240, 7));
        var test = ml.Data.LoadFromEnumerable(Rows(90, 8));
        var estimator = ml.Transforms.Linformer(Options("Redness"));
        var promised = estimator.GetOutputSchema(LinformerEstimator.ShapeOf(train.Schema));
        using var model = estimator.Fit(train);
        var scored = model.Transform(test);
        AssertPromisedIsDelivered(promised, scored.Schema);
        Assert.IsNull(scored.Schema.GetColumnOrNull("PredictedLabel"), "regression trainers emit Score only");
        Assert.IsNull(scored.Schema.GetColumnOrNull("Probability"));
        var metrics = ml.Regression.Evaluate(scored, labelColumnName: "Redness");
        TestContext.WriteLine($"regression head: R² {metrics.RSquared:F3}, RMSE {metrics.RootMeanSquaredError:F4}");
        Assert.IsGreaterThan(0.5, metrics.RSquared, "R²");
        AssertAnnotations(scored.Schema["Score"], "Regression", "Score");
        var score = scored.GetColumn<float>("Score").ToList();
        AssertEngineAndReloadAgree<RegressionPrediction>(ml, model, train.Schema, test,
            (p, row) => Assert.AreEqual(score[row], p.Score, Tolerances.ReorderedFloat32, $"row {row}: Score"), "Score");
    }

    public sealed class RegressionPrediction
    {
        public float Score { get; set; }
    }

    [TestMethod]
    public void ScoreColumnSetIdIsOneMoreThanTheInputsLargest()
    {
        var ml = new MLContext(seed: 6);
        var train = ml.Data.LoadFromEnumerable(Rows(60, 9));
        var first = Options("IsRed");
        first.Epochs = 1;
        var second = Options("IsRed");
        second.Epochs = 1;
        second.OutputColumnName = "Features2";
        second.ScoreColumnName = "Score2";
        second.ProbabilityColumnName = "Probability2";
        second.PredictedLabelColumnName = "PredictedLabel2";
        using var model = ml.Transforms.Linformer(first).Append(ml.Transforms.Linformer(second)).Fit(train);
        var schema = model.Transform(train).Schema;
        Assert.AreEqual(1u, SetId(schema["Score"]));
        Assert.AreEqual(1u, SetId(schema["PredictedLabel"]));
        Assert.AreEqual(2u, SetId(schema["Score2"]));
        Assert.AreEqual(2u, SetId(schema["Probability2"]));
    }

    /// <summary>The probe rows the fixtures in Fixtures/models were recorded on (16 token ids below 10 per row).</summary>
    public sealed class LegacyRow
    {
        [VectorType(16)] public int[] Tokens { get; set; } = new int[16];
    }

    [TestMethod]
    [DataRow("legacy-binary")]
    [DataRow("legacy-key")]
    public void ModelsSavedBeforeTheHeadColumnsLoadAndGiveTheirRecordedOutputs(string name)
    {
        // Saved by format 1.2 (before the head's ML.NET columns) with ScoreColumnName = "Score": a Boolean label
        // (legacy-binary) and a 3-class Key label (legacy-key); the .txt holds the float bits of Features | Score
        // that model gave on these probe rows when it was saved.
        var folder = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "Fixtures", "models");
        var random = new Random(2);
        var probe = Enumerable.Range(0, 4).Select(_ => new LegacyRow { Tokens = Enumerable.Range(0, 16).Select(_ => random.Next(10)).ToArray() }).ToList();
        var ml = new MLContext();
        var model = ml.Model.Load(Path.Combine(folder, name + ".zip"), out _);
        try
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(probe));
            Assert.IsNull(scored.Schema.GetColumnOrNull("PredictedLabel"), "a 1.2 model emits what it emitted: no PredictedLabel");
            var features = scored.GetColumn<float[]>("Features").ToList();
            var scores = scored.GetColumn<float[]>("Score").ToList();
            var expected = File.ReadAllLines(Path.Combine(folder, name + ".txt"));
            Assert.HasCount(expected.Length, features);
            static float[] Bits(string hex) => hex.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
            for (int i = 0; i < expected.Length; i++)
            {
                var parts = expected[i].Split('|');
                CollectionAssert.AreEqual(Bits(parts[0]), features[i], $"row {i}: Features");
                CollectionAssert.AreEqual(Bits(parts[1]), scores[i], $"row {i}: Score (class probabilities)");
            }
        }
        finally { (model as IDisposable)?.Dispose(); }
    }

    private static uint SetId(DataViewSchema.Column column)
    {
        Assert.AreEqual(new KeyDataViewType(typeof(uint), int.MaxValue), column.Annotations.Schema["ScoreColumnSetId"].Type, column.Name);
        uint id = 0;
        column.Annotations.GetValue("ScoreColumnSetId", ref id);
        return id;
    }

    private static void AssertAnnotations(DataViewSchema.Column column, string scoreColumnKind, string scoreValueKind)
    {
        var text = default(ReadOnlyMemory<char>);
        column.Annotations.GetValue("ScoreColumnKind", ref text);
        Assert.AreEqual(scoreColumnKind, text.ToString(), $"{column.Name}: ScoreColumnKind");
        column.Annotations.GetValue("ScoreValueKind", ref text);
        Assert.AreEqual(scoreValueKind, text.ToString(), $"{column.Name}: ScoreValueKind");
        Assert.IsGreaterThan(0u, SetId(column));
    }

    /// <summary>Every promised column is delivered with the same item type, vector kind, key-ness and annotation names, and nothing else is added.</summary>
    internal static void AssertPromisedIsDelivered(SchemaShape promised, DataViewSchema delivered)
    {
        Assert.AreEqual(promised.Count, delivered.Count(c => !c.IsHidden), "column count");
        foreach (var column in promised)
        {
            var actual = delivered[column.Name];
            var item = actual.Type is VectorDataViewType v ? v.ItemType : actual.Type;
            Assert.AreEqual(column.IsKey, item is KeyDataViewType, $"{column.Name}: IsKey");
            Assert.AreEqual(column.ItemType, item is KeyDataViewType ? NumberDataViewType.UInt32 : item, $"{column.Name}: item type");
            Assert.AreEqual(column.Kind == SchemaShape.Column.VectorKind.Scalar, actual.Type is not VectorDataViewType, $"{column.Name}: scalar or vector");
            var promisedAnnotations = (column.Annotations ?? new SchemaShape(Array.Empty<SchemaShape.Column>())).Select(a => a.Name).Order().ToList();
            var deliveredAnnotations = actual.Annotations.Schema.Select(a => a.Name).Order().ToList();
            CollectionAssert.AreEqual(promisedAnnotations, deliveredAnnotations, $"{column.Name}: annotations (promised {string.Join(", ", promisedAnnotations)}; delivered {string.Join(", ", deliveredAnnotations)})");
        }
    }

    /// <summary>A PredictionEngine gives the batched Transform's values; a saved and reloaded model gives them bit for bit.</summary>
    private static void AssertEngineAndReloadAgree<TPrediction>(MLContext ml, ITransformer model, DataViewSchema trainSchema, IDataView test,
        Action<TPrediction, int> check, params string[] columns) where TPrediction : class, new()
    {
        var rows = ml.Data.CreateEnumerable<ColourRow>(test, reuseRowObject: false).ToList();
        var engine = ml.Model.CreatePredictionEngine<ColourRow, TPrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        for (int i = 0; i < rows.Count; i++) check(engine.Predict(rows[i]), i);

        var path = Path.Combine(Path.GetTempPath(), $"linformer-head-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, trainSchema, path);
            var loaded = new MLContext().Model.Load(path, out _);
            try
            {
                var before = model.Transform(test);
                var after = loaded.Transform(test);
                Assert.AreEqual(before.Schema.Count, after.Schema.Count);
                foreach (var name in columns)
                {
                    Assert.AreEqual(before.Schema[name].Type, after.Schema[name].Type, name);
                    CollectionAssert.AreEqual(before.Schema[name].Annotations.Schema.Select(a => a.Name).ToList(), after.Schema[name].Annotations.Schema.Select(a => a.Name).ToList(), name);
                    CollectionAssert.AreEqual(Values(before, name), Values(after, name), $"{name}: saved and reloaded");
                }
            }
            finally { (loaded as IDisposable)?.Dispose(); }
        }
        finally { File.Delete(path); }
    }

    private static List<string> Values(IDataView data, string column)
    {
        var type = data.Schema[column].Type;
        return type switch
        {
            VectorDataViewType => data.GetColumn<float[]>(column).Select(v => string.Join(" ", v.Select(x => BitConverter.SingleToInt32Bits(x)))).ToList(),
            KeyDataViewType => data.GetColumn<uint>(column).Select(v => v.ToString(CultureInfo.InvariantCulture)).ToList(),
            BooleanDataViewType => data.GetColumn<bool>(column).Select(v => v.ToString()).ToList(),
            _ => data.GetColumn<float>(column).Select(v => BitConverter.SingleToInt32Bits(v).ToString(CultureInfo.InvariantCulture)).ToList(),
        };
    }
}
