using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests;

[TestClass]
public sealed class LinformerBadInputTests
{
    private const int N = 16;

    public sealed class Tokens { [VectorType(N)] public int[] Ids { get; set; } = new int[N]; public bool Label { get; set; } public string Text { get; set; } = ""; }
    public sealed class Floats { [VectorType(N)] public float[] Values { get; set; } = new float[N]; }
    public sealed class WrongSize { [VectorType(N + 1)] public int[] Ids { get; set; } = new int[N + 1]; }
    public sealed class Variable { public int[] Ids { get; set; } = new int[N]; }

    private static LinformerEstimator.Options Options(string input = "Ids") => new()
    {
        InputColumnName = input, VocabularySize = 8, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1, Epochs = 1,
    };

    /// <summary>The action throws exactly <typeparamref name="TException"/>; its message (with any inner ones) holds every fragment.</summary>
    private static void ExpectMessage<TException>(Action action, params string[] fragments) where TException : Exception
    {
        var caught = Assert.ThrowsExactly<TException>(action);
        var text = string.Join(" | ", Chain(caught).Select(e => e.Message));
        foreach (var f in fragments) StringAssert.Contains(text, f);
    }

    private static IEnumerable<Exception> Chain(Exception? e) { for (; e is not null; e = e.InnerException) yield return e; }

    [TestMethod]
    public void MissingColumn()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Tokens() });
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(Options("Nope")).Fit(data), "Could not find input column 'Nope'");
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(Options("Nope")).GetOutputSchema(LinformerEstimator.ShapeOf(data.Schema)), "Could not find input column 'Nope'");
    }

    [TestMethod]
    public void WrongItemTypeWrongSizeAndVariableSize()
    {
        var ml = new MLContext(1);
        // A Text column is an input kind of its own (TextInputTests): without SequenceLength it is refused, naming it.
        ExpectMessage<ArgumentException>(() => ml.Transforms.Linformer(Options("Text")).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() })),
            "SequenceLength must be set for the Text input column 'Text'");
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(Options("Label")).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() })),
            "Schema mismatch for input column 'Label'", "got Boolean");
        var o = Options();
        o.SequenceLength = N;
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(new[] { new WrongSize() })),
            "Schema mismatch for input column 'Ids': expected Vector<Int32, 16>, got Vector<Int32, 17>");
        // A variable-length column needs SequenceLength (VariableLengthInputTests covers what it then does).
        ExpectMessage<ArgumentException>(() => ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(new[] { new Variable() })),
            "SequenceLength must be set for the variable-length input column 'Ids'", "VarVector<Int32>");
        // A fitted model rejects a schema with another size too.
        using var model = ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() }));
        ExpectMessage<ArgumentOutOfRangeException>(() => model.Transform(ml.Data.LoadFromEnumerable(new[] { new WrongSize() })),
            "Schema mismatch for input column 'Ids': expected Vector<Int32, 16>, got Vector<Int32, 17>");
    }

    [TestMethod]
    public void TokenIdOutsideTheVocabulary()
    {
        var ml = new MLContext(1);
        var bad = new Tokens { Ids = Enumerable.Repeat(1, N).ToArray() };
        bad.Ids[5] = 8;
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(new[] { bad })), "token id 8", "index 5", "[0, 8)");
        using var model = ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() }));
        ExpectMessage<ArgumentOutOfRangeException>(() => model.Transform(ml.Data.LoadFromEnumerable(new[] { bad })).GetColumn<float[]>("Features").ToList(), "token id 8");
    }

    [TestMethod]
    public void NaNOrInfinityInFloatInputStopsFit()
    {
        var ml = new MLContext(1);
        var row = new Floats();
        row.Values[3] = float.NaN;
        var o = new LinformerEstimator.Options { InputColumnName = "Values", SequenceLength = N, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1 };
        ExpectMessage<InvalidOperationException>(() => ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(new[] { new Floats(), row })), "'Values'", "NaN", "index 3", "row 1");
        row.Values[3] = float.PositiveInfinity;
        ExpectMessage<InvalidOperationException>(() => ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(new[] { row })), "Infinity");
    }

    [TestMethod]
    public void EmptyTrainingData()
    {
        var ml = new MLContext(1);
        ExpectMessage<InvalidOperationException>(() => ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(Array.Empty<Tokens>())), "no rows");
    }

    [TestMethod]
    public void LabelOfUnsupportedType()
    {
        var ml = new MLContext(1);
        var o = Options();
        o.LabelColumnName = "Text";
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() })),
            "Schema mismatch for label column 'Text'", "expected Key, Boolean", "got String");
    }

    public sealed class KeyVectorLabel
    {
        [VectorType(N)] public int[] Ids { get; set; } = new int[N];
        [KeyType(3), VectorType(2)] public uint[] Label { get; set; } = [1, 2];
    }

    [TestMethod]
    public void LabelOfKeyVectorsIsRefusedInML_NETsWordingOfKeyTypes()
    {
        var ml = new MLContext(1);
        var o = Options();
        o.LabelColumnName = "Label";
        var data = ml.Data.LoadFromEnumerable(new[] { new KeyVectorLabel() });
        // The schema shape of a chain writes a key column as ML.NET does (Key<UInt32>), the fitted schema with its count.
        ExpectMessage<ArgumentOutOfRangeException>(() => new EstimatorChain<ITransformer>().Append(ml.Transforms.Linformer(o)).Fit(data),
            "Schema mismatch for label column 'Label': expected Key, Boolean (classification) or Single (regression), got Vector<Key<UInt32>>");
        ExpectMessage<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(o).Fit(data),
            "Schema mismatch for label column 'Label'", "got Vector<Key<UInt32, 0-2>, 2>");
    }

    [TestMethod]
    public void ScoreColumnWithoutALabelIsAnErrorNamingTheOption()
    {
        var ml = new MLContext(1);
        var o = Options();
        o.ScoreColumnName = "Score";
        ExpectMessage<ArgumentException>(() => ml.Transforms.Linformer(o), "ScoreColumnName ('Score')", "LabelColumnName");
    }

    [TestMethod]
    public void HeadColumnNamesMustDifferFromEachOtherAndFromTheOutput()
    {
        var ml = new MLContext(1);
        void Bad(Action<LinformerEstimator.Options> change, params string[] fragments)
        {
            var o = Options();
            o.LabelColumnName = "Label";
            o.ScoreColumnName = "Score";
            change(o);
            ExpectMessage<ArgumentException>(() => ml.Transforms.Linformer(o), fragments);
        }
        Bad(o => o.ScoreColumnName = "Features", "ScoreColumnName ('Features') must differ from OutputColumnName");
        Bad(o => o.PredictedLabelColumnName = "Score", "PredictedLabelColumnName ('Score') must differ from ScoreColumnName");
        Bad(o => o.ProbabilityColumnName = "PredictedLabel", "PredictedLabelColumnName ('PredictedLabel') must differ from ProbabilityColumnName");
        Bad(o => o.ProbabilityColumnName = " ", "ProbabilityColumnName must be null");
    }

    [TestMethod]
    public void OptionsOutOfRangeAreRejectedWhenTheEstimatorIsCreated()
    {
        var ml = new MLContext(1);
        void Bad<TException>(Action<LinformerEstimator.Options> change, params string[] fragments) where TException : Exception
        {
            var o = Options();
            change(o);
            ExpectMessage<TException>(() => ml.Transforms.Linformer(o), fragments);
        }
        Bad<ArgumentOutOfRangeException>(o => o.BatchSize = 0, "BatchSize (0)");
        Bad<ArgumentOutOfRangeException>(o => o.Epochs = -1, "Epochs (-1)");
        Bad<ArgumentOutOfRangeException>(o => o.LearningRate = 0, "LearningRate (0)");
        Bad<ArgumentOutOfRangeException>(o => o.ValidationFraction = 1.5, "ValidationFraction (1.5)");
        Bad<ArgumentException>(o => o.Heads = 3, "ModelWidth (8)", "Heads (3)");
        Bad<ArgumentOutOfRangeException>(o => o.ProjectedLength = 0, "ProjectedLength (0)");
        Bad<ArgumentOutOfRangeException>(o => o.MaskingProbability = 0, "MaskingProbability (0)");
        Bad<FileNotFoundException>(o => o.PyTorchWeightsPath = "no-such-file.safetensors", "no-such-file.safetensors");
        // k larger than the column's N is found at Fit, naming the column.
        var k = Options();
        k.ProjectedLength = 32;
        ExpectMessage<ArgumentException>(() => ml.Transforms.Linformer(k).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() })), "'Ids'", "ProjectedLength (32)", "SequenceLength (16)", "dim_k");
    }

    [TestMethod]
    public void CancellationStopsTrainingBetweenBatches()
    {
        var ml = new MLContext(1);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var o = Options();
        o.CancellationToken = cts.Token;
        Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() })));
    }

    [TestMethod]
    public void AskingForAMissingGpuWithoutFallbackIsAnError()
    {
        if (TorchSharp.torch.cuda.is_available()) Assert.Inconclusive("A CUDA device is present.");
        var ml = new MLContext(1) { GpuDeviceId = 0, FallbackToCpu = false };
        ExpectMessage<InvalidOperationException>(() => ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(new[] { new Tokens() })), "GpuDeviceId", "FallbackToCpu");
        var fallback = new MLContext(1) { GpuDeviceId = 0, FallbackToCpu = true };
        using var model = fallback.Transforms.Linformer(Options()).Fit(fallback.Data.LoadFromEnumerable(new[] { new Tokens() }));
        Assert.IsNotNull(model);
    }
}
