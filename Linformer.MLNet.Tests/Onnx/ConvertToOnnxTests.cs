using Linformer.MLNet.Tests.Hardening;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace Linformer.MLNet.Tests.Onnx;

/// <summary>
/// ML.NET's own <c>mlContext.Model.ConvertToOnnx</c> cannot export the Linformer transform; on a pipeline that contains
/// it the converter must fail with an error that points to <see cref="LinformerTransformer.ExportToOnnx(Stream)"/>,
/// not silently write only the steps after it (docs/onnx.md).
/// </summary>
[TestClass]
public sealed class ConvertToOnnxTests
{
    private const string Pointer = "LinformerTransformer.ExportToOnnx";

    [TestMethod]
    public void ConvertToOnnxOfLinformerFollowedByATrainerIsRefusedNamingExportToOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(12, seed: 3));
        var pipeline = ml.Transforms.Linformer(Tiny.Options(label: false))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression("Label", "Features", maximumNumberOfIterations: 2));
        var model = pipeline.Fit(data);
        try
        {
            using var stream = new MemoryStream();
            var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(model, data, stream));
            StringAssert.Contains(error.Message, Pointer);
            StringAssert.Contains(error.Message, "'Features'");
            Assert.AreEqual(0, stream.Length, "nothing is written");
        }
        finally { DisposeLinformer(model); }
    }

    [TestMethod]
    public void ConvertToOnnxOfLinformerAloneIsRefusedNamingExportToOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(8, seed: 3));
        using var transformer = Tiny.Fit(ml, data, Tiny.Options(label: false));
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(transformer, data, stream));
        StringAssert.Contains(error.Message, Pointer);


        // The refusal is only for the converter: the transform's output still reads as before.
        Assert.HasCount(8, transformer.Transform(data).GetColumn<float[]>("Features").ToList());
    }

    [TestMethod]
    public void TheStepsAfterLinformerConvertOnItsCachedOutputAsTheMessageSays()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(12, seed: 3));
        using var linformer = Tiny.Fit(ml, data, Tiny.Options(label: false));
        var encoded = linformer.Transform(data);
        var rest = ml.Transforms.NormalizeMinMax("Features")
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression("Label", "Features", maximumNumberOfIterations: 2))
            .Fit(encoded);

        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(rest, encoded, stream));
        StringAssert.Contains(error.Message, "mlContext.Data.Cache");

        ml.Model.ConvertToOnnx(rest, ml.Data.Cache(encoded), stream);
        using var session = new InferenceSession(stream.ToArray());
        CollectionAssert.Contains(session.InputMetadata.Keys.ToList(), "Features");
        CollectionAssert.Contains(session.OutputMetadata.Keys.ToList(), "Probability.output");
    }

    [TestMethod]
    public void APipelineWithoutLinformerStillConverts()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(12, seed: 3));
        var model = ml.Transforms.Conversion.ConvertType("Features", "Tokens", DataKind.Single)
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression("Label", "Features", maximumNumberOfIterations: 2))
            .Fit(data);
        using var stream = new MemoryStream();
        ml.Model.ConvertToOnnx(model, data, stream);

        using var session = new InferenceSession(stream.ToArray());
        CollectionAssert.Contains(session.InputMetadata.Keys.ToList(), "Tokens");
        CollectionAssert.Contains(session.OutputMetadata.Keys.ToList(), "Probability.output");
    }

    private static void DisposeLinformer(IEnumerable<ITransformer> model)
    {
        foreach (var step in model)
            if (step is IDisposable disposable) disposable.Dispose();
    }
}
