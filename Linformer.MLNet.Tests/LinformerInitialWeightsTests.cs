using Linformer.MLNet.Modules;
using Linformer.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests;

[TestClass]
public sealed class LinformerInitialWeightsTests
{
    public sealed class Row { [VectorType(48 * 24)] public float[] Values { get; set; } = Array.Empty<float>(); }

    [TestMethod]
    public void EpochsZeroWithPyTorchWeightsFeaturisesExactlyAsLinformerPytorch()
    {
        var folder = Path.Combine(TestPaths.SeedFixtures, "encoder-none-relu");
        var io = SafeTensors.Read(Path.Combine(folder, "io.safetensors"));
        try
        {
            var input = io["input"];                                   // (B, 48, 24)
            var expected = io["output"];
            long b = input.shape[0];
            var rows = Enumerable.Range(0, (int)b).Select(i => new Row { Values = input[i].flatten().data<float>().ToArray() }).ToList();
            var ml = new MLContext(seed: 1);
            var options = new LinformerEstimator.Options
            {
                InputColumnName = "Values", OutputColumnName = "Encoded", SequenceLength = 48, ModelWidth = 24, ProjectedLength = 12, Heads = 3, Depth = 1,
                FeedForwardSize = 64, Activation = Activation.Relu, Sharing = ParameterSharing.None, Epochs = 0,
                OutputKind = LinformerOutputKind.Sequence, PyTorchWeightsPath = Path.Combine(folder, "weights.safetensors"),
            };
            var data = ml.Data.LoadFromEnumerable(rows);
            using var model = ml.Transforms.Linformer(options).Fit(data);
            var encoded = model.Transform(data).GetColumn<float[]>("Encoded").ToList();
            double max = 0;
            for (int i = 0; i < b; i++)
            {
                var reference = expected[i].flatten().data<float>().ToArray();
                for (int j = 0; j < reference.Length; j++) max = Math.Max(max, Math.Abs(reference[j] - encoded[i][j]));
            }
            Assert.IsLessThan(Tolerances.SeedFixture, max, $"max |ML.NET transform - linformer-pytorch| = {max:E3}");

            // A saved Linformer model is an initial model too: Epochs = 0 reproduces it.
            var again = new LinformerEstimator.Options
            {
                InputColumnName = "Values", OutputColumnName = "Encoded", Epochs = 0, OutputKind = LinformerOutputKind.Sequence, InitialModel = model,
            };
            using var copy = ml.Transforms.Linformer(again).Fit(data);
            var copied = copy.Transform(data).GetColumn<float[]>("Encoded").ToList();
            for (int i = 0; i < b; i++) CollectionAssert.AreEqual(encoded[i], copied[i], $"row {i}");
        }
        finally
        {
            foreach (var t in io.Values) t.Dispose();
        }
    }
}
