using System.Globalization;
using System.Runtime.CompilerServices;
using Linformer.MLNet.Tests.Examples;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static Linformer.MLNet.Tests.Data.InputConfigurations;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// The ML.NET layer over every input configuration of <see cref="InputConfigurations.All"/> (Int32, Int64 and Key
/// tokens with <c>PaddingTokenId</c>, floats with a mask column, every output kind, the regression score), one
/// table-driven test per property: the promised schema is the delivered one, <c>Transform</c> equals
/// <c>PredictionEngine</c> and the network run on the same batch, and a model saved here and loaded in a new process
/// gives the same values bit for bit.
/// </summary>
[TestClass]
public sealed class InputConfigurationTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// A <c>PredictionEngine</c> encodes one row, <c>Transform</c> batches of <c>BatchSize</c>: CPU kernels block the
    /// two shapes differently, so they agree to rounding, not bit for bit: within this bound, docs/hardening.md says
    /// (largest difference measured 3.6e-7).
    /// </summary>
    private const double EngineVersusBatch = 2e-6;

    private static LinformerTransformer Fit(MLContext ml, Configuration c, IDataView data)
        => ml.Transforms.Linformer(c.Options()).Fit(data);

    // ML.NET's own SchemaShape.Create(DataViewSchema) is internal; its estimator tests compare shapes made by it.
    [UnsafeAccessor(UnsafeAccessorKind.StaticMethod, Name = "Create")]
    private static extern SchemaShape CreateShape(SchemaShape? declaringType, DataViewSchema schema);

    [TestMethod]
    public void PromisedSchemaEqualsTheTransformersAndTheTransformedDatas()
    {
        using var oneThread = OneIntraOpThread();
        foreach (var c in All)
        {
            var ml = new MLContext(seed: 1);
            var raw = ml.Data.LoadFromEnumerable(Rows(12, 1));
            // A pass-through column with annotations (MapValueToKey's KeyValues): they must survive the transform.
            var data = ml.Transforms.Conversion.MapValueToKey("Annotated", nameof(Row.Int32Tokens)).Fit(raw).Transform(raw);
            Assert.IsNotNull(data.Schema["Annotated"].Annotations.Schema.GetColumnOrNull("KeyValues"));
            var estimator = ml.Transforms.Linformer(c.Options());
            var promised = estimator.GetOutputSchema(CreateShape(null, data.Schema));
            using var model = estimator.Fit(data);
            var fromTransformer = model.GetOutputSchema(data.Schema);
            var delivered = model.Transform(data).Schema;

            // The transformer's schema and the transformed data's: the same columns, types (with sizes) and annotations.
            Assert.HasCount(fromTransformer.Count, delivered, $"{c}: column count");
            for (int i = 0; i < delivered.Count; i++)
            {
                var (expected, actual) = (fromTransformer[i], delivered[i]);
                string what = $"{c}: column {i} '{actual.Name}'";
                Assert.AreEqual(expected.Name, actual.Name, what);
                Assert.AreEqual(expected.Type, actual.Type, what);
                Assert.AreEqual(expected.IsHidden, actual.IsHidden, what);
                AssertSameAnnotations(expected.Annotations, actual.Annotations, what);
            }

            // The estimator's promise: the shape of what is delivered (names, vector kinds, item types, keys, annotations).
            AssertSameShape(promised, CreateShape(null, delivered), c.ToString());

            // Sizes are not part of a SchemaShape: the delivered ones are those the configuration asks for.
            Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, c.FeatureSize), delivered["Features"].Type, $"{c}: Features");
            if (c.RegressionScore) Assert.AreEqual(NumberDataViewType.Single, delivered["Score"].Type, $"{c}: a regression Score is a scalar");
            else Assert.IsNull(delivered.GetColumnOrNull("Score"), $"{c}: no Score without a head");
            Assert.AreEqual(c.FeatureSize, model.OutputSize, $"{c}: OutputSize");
            Assert.AreEqual(c.FeatureSize, Column(model.Transform(data), "Features")[0].Length, $"{c}: floats per row in the data");
        }
    }

    private static void AssertSameShape(SchemaShape expected, SchemaShape actual, string what)
    {
        CollectionAssert.AreEqual(expected.Select(x => x.Name).ToList(), actual.Select(x => x.Name).ToList(), $"{what}: promised vs delivered column names");
        foreach (var (e, a) in expected.Zip(actual))
        {
            Assert.AreEqual(e.Kind, a.Kind, $"{what}: vector kind of '{e.Name}'");
            Assert.AreEqual(e.ItemType, a.ItemType, $"{what}: item type of '{e.Name}'");
            Assert.AreEqual(e.IsKey, a.IsKey, $"{what}: key-ness of '{e.Name}'");
            CollectionAssert.AreEqual(
                e.Annotations.Select(x => $"{x.Name}:{x.Kind}:{x.ItemType}:{x.IsKey}").ToList(),
                a.Annotations.Select(x => $"{x.Name}:{x.Kind}:{x.ItemType}:{x.IsKey}").ToList(), $"{what}: annotations of '{e.Name}'");
        }
    }

    private static void AssertSameAnnotations(DataViewSchema.Annotations expected, DataViewSchema.Annotations actual, string what)
        => CollectionAssert.AreEqual(expected.Schema.Select(x => $"{x.Name}:{x.Type}").ToList(), actual.Schema.Select(x => $"{x.Name}:{x.Type}").ToList(), $"{what}: annotations");

    [TestMethod]
    public void TransformEqualsPredictionEngineAndTheNetworkOnTheSameBatch()
    {
        using var oneThread = OneIntraOpThread();
        var rows = Rows(11, 2);   // batches of 4: two full ones and a partial one
        foreach (var c in All)
        {
            var ml = new MLContext(seed: 2);
            var data = ml.Data.LoadFromEnumerable(rows);
            using var model = Fit(ml, c, ml.Data.LoadFromEnumerable(Rows(12, 3)));
            var transformed = model.Transform(data);
            var batched = c.OutputColumns.ToDictionary(col => col, col => Column(transformed, col));

            // PredictionEngine, row by row.
            double largest = 0;
            using (var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model, new PredictionEngineOptions { OwnsTransformer = false, IgnoreMissingColumns = true }))
                for (int i = 0; i < rows.Count; i++)
                {
                    var p = engine.Predict(rows[i]);
                    Assert.HasCount(c.FeatureSize, p.Features, $"{c}: row {i}");
                    for (int j = 0; j < p.Features.Length; j++)
                    {
                        largest = Math.Max(largest, Math.Abs(p.Features[j] - batched["Features"][i][j]));
                        Assert.AreEqual(batched["Features"][i][j], p.Features[j], EngineVersusBatch, $"{c}: row {i}, feature {j}: Transform vs PredictionEngine");
                    }
                    if (c.RegressionScore)
                    {
                        largest = Math.Max(largest, Math.Abs(p.Score - batched["Score"][i][0]));
                        Assert.AreEqual(batched["Score"][i][0], p.Score, EngineVersusBatch, $"{c}: row {i}: Score, Transform vs PredictionEngine");
                    }
                }
            TestContext.WriteLine($"{c}: max |Transform - PredictionEngine| = {largest.ToString("E2", CultureInfo.InvariantCulture)}");

            // The network itself on each batch of 4, with the mask the settings imply (ids != PaddingTokenId, or the
            // mask column): the same computation as Transform's, so bit-identical.
            for (int start = 0; start < rows.Count; start += 4)
            {
                var batch = rows.Skip(start).Take(4).ToList();
                var (features, score) = Network(model, c, batch);
                for (int i = 0; i < batch.Count; i++)
                {
                    CollectionAssert.AreEqual(features[i], batched["Features"][start + i], $"{c}: row {start + i}: Transform vs the network with the implied mask");
                    if (c.RegressionScore) Assert.AreEqual(score![i], batched["Score"][start + i][0], 0f, $"{c}: row {start + i}: Score, Transform vs the network's head");
                }
            }
        }
    }

    /// <summary>Runs the fitted network directly on rows: encoding, pooling as configured, and the regression head.</summary>
    private static (float[][] features, float[]? score) Network(LinformerTransformer model, Configuration c, List<Row> batch)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var mask = torch.tensor(batch.SelectMany(r => c.IsTokens ? r.Int32Tokens.Select(t => t != c.PaddingTokenId) : r.Mask).ToArray(), new long[] { batch.Count, N });
        var input = c.IsTokens
            ? torch.tensor(batch.SelectMany(r => r.Int64Tokens).ToArray(), new long[] { batch.Count, N })
            : torch.tensor(batch.SelectMany(r => r.Values).ToArray(), new long[] { batch.Count, N, Channels });
        var encoded = model.Network.forward(input, mask);
        var pooled = LinformerNetwork.Pool(encoded, mask, c.OutputKind).data<float>().ToArray();
        var features = Enumerable.Range(0, batch.Count).Select(i => pooled.AsSpan(i * c.FeatureSize, c.FeatureSize).ToArray()).ToArray();
        return (features, c.RegressionScore ? model.Network.Head(encoded, mask).data<float>().ToArray() : null);
    }

    [TestMethod]
    public void SaveThenLoadInANewProcessGivesBitIdenticalValues()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"linformer-configurations-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var expected = new List<Dictionary<string, List<float[]>>>();
            var schemas = new List<Dictionary<string, string>>();
            var jobs = new List<string>();
            for (int index = 0; index < All.Length; index++)
            {
                var c = All[index];
                var ml = new MLContext(seed: 4);
                LinformerTransformer trained;
                using (OneIntraOpThread()) trained = Fit(ml, c, ml.Data.LoadFromEnumerable(Rows(12, 5)));
                // Encoded with libtorch's default thread count, as in the new process.
                using var model = trained;
                var probe = ml.Data.LoadFromEnumerable(Rows(7, 6));
                var output = model.Transform(probe);
                expected.Add(c.OutputColumns.ToDictionary(col => col, col => Column(output, col)));
                schemas.Add(c.OutputColumns.ToDictionary(col => col, col => output.Schema[col].Type.ToString()!));
                string modelPath = Path.Combine(folder, $"model{index}.zip"), dataPath = Path.Combine(folder, $"data{index}.idv");
                ml.Model.Save(model, probe.Schema, modelPath);
                using (var stream = File.Create(dataPath)) ml.Data.SaveAsBinary(probe, stream);
                jobs.Add($"{modelPath}|{dataPath}|{string.Join(",", c.OutputColumns)}");
            }
            var jobsPath = Path.Combine(folder, "jobs.txt");
            File.WriteAllLines(jobsPath, jobs);

            // One new process loads every model (new MLContext, no registration call) and encodes the same rows.
            var host = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "LinformerModelHost", "bin",
                TestPaths.Configuration, "net10.0", "LinformerModelHost.dll");
            Assert.IsTrue(File.Exists(host), $"{host} was not built");
            var result = ProgramRunner.RunDotnet(host, new[] { jobsPath }, TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, result.ExitCode, result.Error);

            var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
            var starts = lines.Select((l, i) => (l, i)).Where(x => x.l.StartsWith("job ", StringComparison.Ordinal)).Select(x => x.i).ToList();
            Assert.HasCount(All.Length, starts, "one block of output per job");
            for (int index = 0; index < All.Length; index++)
            {
                var c = All[index];
                var block = lines.Skip(starts[index] + 1).Take((index + 1 < starts.Count ? starts[index + 1] : lines.Count) - starts[index] - 1).ToList();
                foreach (var column in c.OutputColumns)
                {
                    Assert.Contains($"schema {column} {schemas[index][column]}", block, $"{c}: '{column}' has the same type in the new process");
                    var values = block.Where(l => l.StartsWith($"value {column} ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
                    Assert.HasCount(expected[index][column].Count, values, $"{c}: rows of '{column}' in the new process");
                    for (int row = 0; row < values.Count; row++)
                    {
                        Assert.AreEqual(row.ToString(CultureInfo.InvariantCulture), values[row][2]);
                        var floats = values[row].Skip(3).Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
                        CollectionAssert.AreEqual(expected[index][column][row], floats, $"{c}: row {row} of '{column}': in-process vs loaded in a new process");
                    }
                }
            }
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
