using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// A third-party transformer in an ordinary ML.NET model zip: saved with <c>mlContext.Model.Save</c>, loaded with
/// <c>mlContext.Model.Load</c> in this process and in a fresh one, with a new MLContext and no registration call.
/// </summary>
[TestClass]
public sealed class SaveLoadRoundTripTests : ModelZipTestBase
{
    [TestMethod]
    public void SaveThenLoad_NewMLContextSameProcess_GivesIdenticalValues()
    {
        var (path, expected) = SaveAddConstant();

        var loader = new MLContext(seed: 2);
        var loaded = loader.Model.Load(path, out var inputSchema);

        Assert.IsInstanceOfType<AddConstantTransformer>(loaded);
        Assert.AreEqual(Constant, ((AddConstantTransformer)loaded).Constant);
        Assert.AreEqual(NumberDataViewType.Single, inputSchema[InputColumn].Type);
        var actual = Compute(loader, loaded, LoadInputs(loader));
        AssertBitsEqual(expected.Transform, actual.Transform, "Transform");
        AssertBitsEqual(expected.Predict, actual.Predict, "PredictionEngine");
        AssertBitsEqual(Inputs.Select(v => v + Constant).ToArray(), expected.Transform, "the transformer's own arithmetic");
    }

    [TestMethod]
    public void SaveThenLoad_InsideATransformerChainWithMLNetTransforms_GivesIdenticalValues()
    {
        var saver = new MLContext(seed: 1);
        var data = LoadInputs(saver);
        var copy = saver.Transforms.CopyColumns("Copy", InputColumn).Fit(data);
        var chain = new TransformerChain<ITransformer>(copy, new AddConstantTransformer("Copy", OutputColumn, Constant));
        var expected = Compute(saver, chain, data);
        var path = Path.Combine(TempDirectory, "chain.zip");
        saver.Model.Save(chain, data.Schema, path);

        var loader = new MLContext(seed: 2);
        var loaded = loader.Model.Load(path, out _);

        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(loaded);
        Assert.IsInstanceOfType<AddConstantTransformer>(((TransformerChain<ITransformer>)loaded).LastTransformer);
        AssertBitsEqual(expected.Transform, Compute(loader, loaded, LoadInputs(loader)).Transform, "Transform");
    }

    [TestMethod]
    public void SaveThenLoad_InANewProcess_GivesIdenticalValues()
    {
        var (path, expected) = SaveAddConstant();

        var run = RunModelLoadHost(path);

        Assert.AreEqual(0, run.ExitCode, run.ToString());
        var lines = run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        CollectionAssert.Contains(lines, "type " + typeof(AddConstantTransformer).FullName, run.ToString());
        AssertBitsEqual(expected.Transform, Parse(lines, "transform "), "Transform in the new process");
        AssertBitsEqual(expected.Predict, Parse(lines, "predict "), "PredictionEngine in the new process");
    }

    private sealed class ShiftedRow
    {
        [ColumnName(OutputColumn)]
        public float Shifted { get; set; }
    }

    /// <summary>Saves an <see cref="AddConstantTransformer"/> to model.zip; returns the path and its values before saving.</summary>
    private (string Path, (float[] Transform, float[] Predict) Expected) SaveAddConstant()
    {
        var saver = new MLContext(seed: 1);
        var data = LoadInputs(saver);
        var original = new AddConstantTransformer(InputColumn, OutputColumn, Constant);
        var expected = Compute(saver, original, data);
        var path = Path.Combine(TempDirectory, "model.zip");
        saver.Model.Save(original, data.Schema, path);
        return (path, expected);
    }

    private static (float[] Transform, float[] Predict) Compute(MLContext mlContext, ITransformer model, IDataView data)
    {
        var transformed = model.Transform(data).GetColumn<float>(OutputColumn).ToArray();
        // Not disposed: disposing a default PredictionEngine disposes the transformer it was made from.
        var engine = mlContext.Model.CreatePredictionEngine<FloatRow, ShiftedRow>(model, ignoreMissingColumns: true);
        var predicted = Inputs.Select(v => engine.Predict(new FloatRow { Value = v }).Shifted).ToArray();
        return (transformed, predicted);
    }

    private static void AssertBitsEqual(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        for (var i = 0; i < expected.Length; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: row {i} (input {Inputs[i]:R}) expected {expected[i]:R}, got {actual[i]:R}.");
    }

    private static float[] Parse(string[] lines, string prefix)
        => lines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => BitConverter.Int32BitsToSingle(int.Parse(l[prefix.Length..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)))
            .ToArray();
}
