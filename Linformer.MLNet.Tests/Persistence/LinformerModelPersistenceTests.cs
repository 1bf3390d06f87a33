using System.Globalization;
using System.IO.Compression;
using System.Reflection;
using System.Text.RegularExpressions;
using Linformer.MLNet.Tests.Examples;
using Microsoft.ML;

namespace Linformer.MLNet.Tests.Persistence;

[TestClass]
public sealed class LinformerModelPersistenceTests
{
    public TestContext TestContext { get; set; } = null!;

    private static (MLContext ml, IDataView data, LinformerTransformer model) Trained()
    {
        var ml = new MLContext(seed: 21);
        var data = ml.Data.LoadFromEnumerable(LinformerEstimatorTests.FirstTokenRows(40, 21));
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = "Label", VocabularySize = LinformerEstimatorTests.Vocabulary,
            ModelWidth = 16, ProjectedLength = 8, Heads = 2, Depth = 2, Epochs = 1, Sharing = ParameterSharing.None,
            ProjectionMethod = ProjectionMethod.Fixed,
        };
        return (ml, data, ml.Transforms.Linformer(options).Fit(data));
    }

    private static string TempZip() => Path.Combine(Path.GetTempPath(), $"linformer-{Guid.NewGuid():N}.zip");

    [TestMethod]
    public void SaveThenLoadInANewContextGivesIdenticalValues()
    {
        var (ml, data, model) = Trained();
        var path = TempZip();
        try
        {
            // Expected values come from the original, in-memory model, before it is saved and disposed.
            var expected = LinformerEstimatorTests.Features(ml, model, data);
            using (model) ml.Model.Save(model, data.Schema, path);
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(path, out var schema);
            Assert.IsInstanceOfType<LinformerTransformer>(loaded);
            var actual = LinformerEstimatorTests.Features(fresh, loaded, data);
            Assert.HasCount(expected.Count, actual);
            for (int i = 0; i < expected.Count; i++) CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}: original in-memory model vs loaded in a new MLContext");
            ((IDisposable)loaded).Dispose();
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void SaveInOneProcessLoadInAnotherGivesBitIdenticalOutputs()
    {
        var (ml, data, model) = Trained();
        var path = TempZip();
        var rowsPath = Path.ChangeExtension(path, ".txt");
        try
        {
            var rows = LinformerEstimatorTests.FirstTokenRows(5, 99);
            var probe = ml.Data.LoadFromEnumerable(rows);
            var expected = LinformerEstimatorTests.Features(ml, model, probe);
            ml.Model.Save(model, data.Schema, path);
            model.Dispose();
            File.WriteAllLines(rowsPath, rows.Select(r => string.Join(",", r.Tokens)));
            var host = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "LinformerModelHost", "bin",
                TestPaths.Configuration, "net10.0", "LinformerModelHost.dll");
            var result = ProgramRunner.RunDotnet(host, new[] { path, rowsPath, LinformerEstimatorTests.N.ToString(CultureInfo.InvariantCulture) }, TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, result.ExitCode, result.Error);
            var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("row ", StringComparison.Ordinal)).ToList();
            Assert.HasCount(expected.Count, lines);
            for (int i = 0; i < lines.Count; i++)
            {
                var bits = lines[i][4..].Split(' ').Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
                CollectionAssert.AreEqual(expected[i], bits, $"row {i}: in-process vs new process");
            }
        }
        finally { File.Delete(path); File.Delete(rowsPath); }
    }

    [TestMethod]
    public void SavingADisposedTransformerThrowsAndKeepsTheExistingFile()
    {
        var (ml, data, model) = Trained();
        var path = TempZip();
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var before = File.ReadAllBytes(path);
            model.Dispose();
            Assert.ThrowsExactly<ObjectDisposedException>(() => ml.Model.Save(model, data.Schema, Path.ChangeExtension(path, ".new.zip")));
            Assert.ThrowsExactly<ObjectDisposedException>(() => model.Transform(data));
            CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        }
        finally { File.Delete(path); File.Delete(Path.ChangeExtension(path, ".new.zip")); }
    }

    [TestMethod]
    public void TruncatedOrCorruptWeightsGiveAClearError()
    {
        var (ml, data, model) = Trained();
        var path = TempZip();
        try
        {
            using (model) ml.Model.Save(model, data.Schema, path);
            // Cut the weights entry short inside an otherwise valid zip.
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                var entry = zip.Entries.Single(e => e.FullName.EndsWith("LinformerWeights", StringComparison.Ordinal));
                byte[] bytes;
                using (var s = entry.Open()) { var ms = new MemoryStream(); s.CopyTo(ms); bytes = ms.ToArray(); }
                var name = entry.FullName;
                entry.Delete();
                using var w = zip.CreateEntry(name).Open();
                w.Write(bytes, 0, bytes.Length / 2);
            }
            // ML.NET calls the loader through reflection and does not unwrap (docs/persistence.md).
            var ex = Assert.ThrowsExactly<TargetInvocationException>(() => new MLContext().Model.Load(path, out _));
            TestContext.WriteLine(string.Join(" | ", Chain(ex).Select(e => $"{e.GetType().Name}: {e.Message}")));
            var inner = ex.InnerException;
            Assert.IsNotNull(inner, "the loader's exception inside ML.NET's TargetInvocationException");
            Assert.AreEqual(typeof(InvalidDataException), inner.GetType(), inner.ToString());
            StringAssert.Matches(inner.Message, new Regex(@"^The Linformer weights entry 'LinformerWeights' is truncated: expected \d+ bytes of weights, found \d+\."));
        }
        finally { File.Delete(path); }
    }

    private static IEnumerable<Exception> Chain(Exception? e)
    {
        for (; e is not null; e = e.InnerException) yield return e;
    }
}
