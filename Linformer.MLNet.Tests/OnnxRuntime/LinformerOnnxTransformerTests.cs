using System.Globalization;
using System.IO.Compression;
using Linformer.MLNet.Tests.Examples;
using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Tests.Onnx;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.OnnxRuntime;

/// <summary>
/// <see cref="LinformerOnnxTransformer"/> (Linformer.MLNet.OnnxRuntime) against the <see cref="LinformerTransformer"/>
/// it was made from: the same added columns (name, type, annotations) and values within
/// <see cref="OnnxExportParityTests.Bound"/> for token, float, variable-length and masked input, head columns included;
/// save and load in a new process that has no libtorch (the example's scoring app); bad input and damaged zips.
/// </summary>
[TestClass]
public sealed class LinformerOnnxTransformerTests
{
    private const int N = 8;

    public TestContext TestContext { get; set; } = null!;

    public sealed class FloatRow
    {
        [VectorType(N * 3)] public float[] Values { get; set; } = new float[N * 3];
        [VectorType(N)] public bool[] Mask { get; set; } = new bool[N];
        public float Label { get; set; }
    }

    public sealed class KeyRow
    {
        public uint[] Tokens { get; set; } = [];
        public bool[] Mask { get; set; } = [];
        public bool Label { get; set; }
    }

    public sealed class Mail
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    [TestMethod]
    public void TokenInputWithHeadColumnsMatchesTorchSharp()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(20, seed: 3));
        var options = Tiny.Options();
        options.ScoreColumnName = "Score";   // Score (log-odds), Probability and PredictedLabel beside Features
        using var torch = Tiny.Fit(ml, data, options);
        using var onnx = torch.ToOnnxRuntime();
        AssertSameColumns(ml, torch, onnx, data, "tokens + Boolean head");
        AssertPredictionEnginesAgree(ml, torch, onnx, Tiny.Rows(3, seed: 4).ToList());
    }

    [TestMethod]
    public void FloatInputWithMaskAndRegressionHeadMatchesTorchSharp()
    {
        var ml = new MLContext(seed: 1);
        var random = new Random(5);
        var rows = Enumerable.Range(0, 20).Select(i => new FloatRow
        {
            Values = Enumerable.Range(0, N * 3).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(),
            Mask = Enumerable.Range(0, N).Select(p => p < N - i % 4).ToArray(),   // 0 to 3 padded positions
            Label = (float)random.NextDouble(),
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var torch = ml.Transforms.Linformer(new LinformerEstimator.Options
        {
            InputColumnName = nameof(FloatRow.Values), MaskColumnName = nameof(FloatRow.Mask), LabelColumnName = nameof(FloatRow.Label),
            ScoreColumnName = "Score", SequenceLength = N, Channels = 3, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 2,
            FeedForwardSize = 16, Epochs = 1, BatchSize = 4, OutputKind = LinformerOutputKind.Sequence,
        }).Fit(data);
        using var onnx = torch.ToOnnxRuntime();
        Assert.AreEqual(N * 8, onnx.OutputSize);
        AssertSameColumns(ml, torch, onnx, data, "floats + mask + regression head, sequence output");
    }

    [TestMethod]
    public void VariableLengthKeysWithMaskAndTruncationMatchTorchSharp()
    {
        var ml = new MLContext(seed: 1);
        var random = new Random(9);
        var rows = Enumerable.Range(0, 24).Select(i =>
        {
            int length = 2 + i % 13;   // shorter and longer than N = 8
            return new KeyRow
            {
                Tokens = Enumerable.Range(0, length).Select(_ => (uint)random.Next(0, 11)).ToArray(),   // key 0: a missing key (the unknown id)
                Mask = Enumerable.Range(0, length).Select(p => p == 0 || random.Next(5) > 0).ToArray(),
                Label = i % 2 == 0,
            };
        }).ToList();
        var definition = SchemaDefinition.Create(typeof(KeyRow));
        definition[nameof(KeyRow.Tokens)].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), 10));
        var data = ml.Data.LoadFromEnumerable(rows, definition);
        using var torch = ml.Transforms.Linformer(new LinformerEstimator.Options
        {
            InputColumnName = nameof(KeyRow.Tokens), MaskColumnName = nameof(KeyRow.Mask), LabelColumnName = nameof(KeyRow.Label),
            SequenceLength = N, Truncation = LinformerTruncation.KeepStartAndEnd, ModelWidth = 8, ProjectedLength = 4, Heads = 2,
            Depth = 1, FeedForwardSize = 16, Epochs = 1, BatchSize = 5,
        }).Fit(data);
        using var onnx = torch.ToOnnxRuntime();
        AssertSameColumns(ml, torch, onnx, data, "variable-length keys + mask, head and tail kept");
    }

    /// <summary>
    /// ML.NET's text path with the Linformer swapped for ONNX Runtime, saved, then loaded and scored in a new process by
    /// the example's scoring app, which references Linformer.MLNet.OnnxRuntime and no TorchSharp-cpu: the values equal
    /// the TorchSharp pipeline's, no libtorch file is in the app's output or deps.json, and none is loaded.
    /// </summary>
    [TestMethod]
    public void SavedPipelineScoresInANewProcessWithoutLibTorchLikeTorchSharp()
    {
        var app = ProgramRunner.ExampleDll(Path.Combine("OnnxScoring", "Scoring"), "OnnxScoring.Scoring");
        AssertNoLibTorch(Path.GetDirectoryName(app)!);

        var ml = new MLContext(seed: 1);
        var random = new Random(2);
        string[] spam = ["win", "cash", "prize", "free", "offer"], ham = ["meeting", "agenda", "notes", "lunch", "report"];
        var mails = Enumerable.Range(0, 40).Select(i => new Mail
        {
            Label = i % 2 == 0,
            Text = string.Join(' ', Enumerable.Range(0, random.Next(2, 20)).Select(_ => (i % 2 == 0 ? spam : ham)[random.Next(5)])),
        }).ToList();
        var train = ml.Data.LoadFromEnumerable(mails);
        var torchModel = ml.Transforms.Text.TokenizeIntoWords("Words", nameof(Mail.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words"))
            .Append(ml.Transforms.Linformer(new LinformerEstimator.Options
            {
                InputColumnName = "Tokens", LabelColumnName = nameof(Mail.Label), SequenceLength = 12, ModelWidth = 8, ProjectedLength = 4,
                Heads = 2, Depth = 1, FeedForwardSize = 16, Epochs = 1, BatchSize = 8,
            }))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(nameof(Mail.Label), "Features", maximumNumberOfIterations: 10))
            .Fit(train);
        var linformer = torchModel.OfType<LinformerTransformer>().Single();
        using var onnx = linformer.ToOnnxRuntime();
        var onnxModel = new TransformerChain<ITransformer>(torchModel.Select(t => t == linformer ? onnx : t).ToArray());

        var probe = ml.Data.LoadFromEnumerable(new[]
        {
            new Mail { Text = "zebra quantum flux" },                                         // no word seen in training
            new Mail { Text = "win cash now with unheardof bonuses" },
            new Mail { Text = string.Join(' ', Enumerable.Repeat("free lunch prize", 9)) },   // 27 words: cut to 12
        });
        string[] columns = ["Features", "Score", "Probability"];
        var scored = torchModel.Transform(probe);
        var expected = columns.ToDictionary(c => c, c => scored.Schema[c].Type is VectorDataViewType
            ? scored.GetColumn<float[]>(c).ToList() : scored.GetColumn<float>(c).Select(v => new[] { v }).ToList());

        var folder = Path.Combine(Path.GetTempPath(), $"linformer-ort-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            string modelPath = Path.Combine(folder, "model.zip"), dataPath = Path.Combine(folder, "probe.idv");
            ml.Model.Save(onnxModel, train.Schema, modelPath);
            using (var stream = File.Create(dataPath)) ml.Data.SaveAsBinary(probe, stream);
            var result = ProgramRunner.RunDotnet(app, ["--hex", modelPath, dataPath, string.Join(",", columns)], TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, result.ExitCode, result.Error);
            var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
            foreach (var column in columns)
            {
                var rows = lines.Where(l => l.StartsWith($"value {column} ", StringComparison.Ordinal)).Select(l => l.Split(' ').Skip(3)
                    .Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray()).ToList();
                Assert.HasCount(expected[column].Count, rows, $"rows of '{column}' in the new process");
                double diff = MaxAbs(expected[column].SelectMany(v => v), rows.SelectMany(v => v));
                TestContext.WriteLine($"{column}: max |ONNX Runtime in a new process - TorchSharp| = {diff:E3}");
                Assert.IsLessThanOrEqualTo(OnnxExportParityTests.Bound, diff, $"'{column}': max |ONNX Runtime in a new process - TorchSharp| = {diff:E3}");
            }
            var natives = lines.Single(l => l.StartsWith("native libraries loaded:", StringComparison.Ordinal));
            StringAssert.Contains(natives, "onnxruntime");
            Assert.DoesNotContain("libtorch", natives, "the scoring app loaded libtorch");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [TestMethod]
    public void BadInputIsRefusedNamingTheColumn()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(8, seed: 3));
        using var torch = Tiny.Fit(ml, data, Tiny.Options(label: false));
        using var onnx = torch.ToOnnxRuntime();

        var floats = ml.Data.LoadFromEnumerable(new[] { new FloatRow() });
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => onnx.Transform(floats));
        StringAssert.Contains(missing.Message, "Could not find input column 'Tokens'");

        var definition = SchemaDefinition.Create(typeof(FloatRow));
        var renamed = ml.Transforms.CopyColumns("Tokens", nameof(FloatRow.Values)).Fit(floats).Transform(floats);
        var mismatch = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => onnx.GetOutputSchema(renamed.Schema));
        StringAssert.Contains(mismatch.Message, "Schema mismatch for input column 'Tokens': expected Vector<Int32, 16>, got Vector<Single, 24>");

        var outside = ml.Data.LoadFromEnumerable(new[] { new Tiny.Row { Tokens = Enumerable.Repeat(Tiny.Vocabulary, Tiny.N).ToArray() } });
        var id = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => onnx.Transform(outside).GetColumn<float[]>("Features").ToList());
        StringAssert.Contains(id.Message, "Input column 'Tokens' has token id 8 at index 0 of row 0, outside the vocabulary [0, 8)");
    }

    [TestMethod]
    public void AGraphThatDoesNotFitTheModelIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(8, seed: 3));
        using var torch = Tiny.Fit(ml, data, Tiny.Options(label: false));
        var other = Tiny.Options(label: false);
        other.ModelWidth = 12;
        other.Heads = 3;
        using var wider = Tiny.Fit(ml, data, other);
        string path = Tiny.TempPath(".onnx");
        try
        {
            wider.ExportToOnnx(path);
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => torch.ToOnnxRuntime(path));
            StringAssert.Contains(ex.Message, $"The Linformer graph (file '{path}') does not fit the model: its output 'features' is Float (batch, 12), the model needs Float (batch, 8).");
            File.WriteAllBytes(path, [1, 2, 3, 4]);
            var garbage = Assert.ThrowsExactly<InvalidDataException>(() => torch.ToOnnxRuntime(path));
            StringAssert.StartsWith(garbage.Message, $"ONNX Runtime cannot load the Linformer graph (file '{path}')");
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void AZipWithADamagedGraphEntryIsRefusedNamingIt()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(8, seed: 3));
        using var torch = Tiny.Fit(ml, data, Tiny.Options(label: false));
        using var onnx = torch.ToOnnxRuntime();
        string path = Tiny.TempPath(".zip");
        try
        {
            ml.Model.Save(onnx, data.Schema, path);
            using (var loaded = (LinformerOnnxTransformer)new MLContext().Model.Load(path, out _))
                Tiny.AssertBitIdentical(Tiny.Features(onnx, data), Tiny.Features(loaded, data), "saved and loaded in this process");

            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                var entry = zip.Entries.Single(e => e.Name == "LinformerOnnxGraph");
                byte[] content;
                using (var stream = entry.Open()) using (var buffer = new MemoryStream()) { stream.CopyTo(buffer); content = buffer.ToArray(); }
                content[content.Length / 2] ^= 0x5A;   // a byte inside the graph
                var name = entry.FullName;
                entry.Delete();
                using var replacement = zip.CreateEntry(name).Open();
                replacement.Write(content);
            }
            Exception? ex = null;
            try { new MLContext().Model.Load(path, out _); }
            catch (Exception e) { ex = e; }   // ML.NET may wrap the loader's exception: look through the chain
            Assert.IsNotNull(ex, "a zip with a damaged graph entry loaded");
            var damaged = Tiny.Chain(ex).OfType<InvalidDataException>().FirstOrDefault();
            Assert.IsNotNull(damaged, Tiny.Messages(ex));
            StringAssert.StartsWith(damaged.Message, "The Linformer ONNX graph entry 'LinformerOnnxGraph' is corrupt: its SHA-256 is ");
        }
        finally { File.Delete(path); }
    }

    /// <summary>
    /// A Text input column: the ONNX Runtime transform tokenises with the model's tokenizer, saves it in its zip like the
    /// Linformer transform does, and gives the TorchSharp values after a save and load. A model that encodes long rows
    /// as windows is refused, naming LongInputs: its windows are averaged outside the graph.
    /// </summary>
    [TestMethod]
    public void TextInputKeepsItsTokenizerThroughSaveAndWindowsAreRefused()
    {
        var ml = new MLContext(seed: 1);
        var words = new[] { "offer", "meeting", "free", "agenda", "money", "notes", "click", "minutes", "win", "project" };
        var random = new Random(11);
        var mails = Enumerable.Range(0, 16).Select(i => new Mail
        {
            Text = string.Join(' ', Enumerable.Range(0, 3 + i % 20).Select(_ => words[random.Next(words.Length)])),
            Label = i % 2 == 0,
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(mails);
        LinformerEstimator.Options Options(LinformerLongInputs longInputs) => new()
        {
            InputColumnName = nameof(Mail.Text), LabelColumnName = nameof(Mail.Label), Tokenizer = LinformerTokenizer.Gpt2(),
            SequenceLength = N, LongInputs = longInputs, ModelWidth = 4, ProjectedLength = 4, Heads = 2, Depth = 1,
            FeedForwardSize = 8, Epochs = 1, BatchSize = 4,
        };
        using var torch = ml.Transforms.Linformer(Options(LinformerLongInputs.Truncate)).Fit(data);
        using var onnx = torch.ToOnnxRuntime();
        string path = Tiny.TempPath(".zip");
        try
        {
            ml.Model.Save(onnx, data.Schema, path);
            using (var zip = ZipFile.OpenRead(path))
                Assert.AreEqual(1, zip.Entries.Count(e => e.Name == "LinformerTokenizer"), "the tokenizer entry in the ONNX Runtime transform's zip");
            using var loaded = (LinformerOnnxTransformer)new MLContext().Model.Load(path, out _);
            AssertSameColumns(ml, torch, loaded, data, "Text input, saved and loaded");
        }
        finally { File.Delete(path); }

        // A Text column is read as variable-length tokens, so windows apply to it (the schema check agrees with Fit).
        var windowedEstimator = ml.Transforms.Linformer(Options(LinformerLongInputs.Windows));
        Assert.IsNotNull(windowedEstimator.GetOutputSchema(LinformerEstimator.ShapeOf(data.Schema)).FirstOrDefault(c => c.Name == "Features").Name);
        using var windowed = windowedEstimator.Fit(data);
        var refused = Assert.ThrowsExactly<NotSupportedException>(() => windowed.ToOnnxRuntime());
        StringAssert.Contains(refused.Message, "LongInputs = Windows");
    }

    [TestMethod]
    public void ADisposedTransformerRefusesWork()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(8, seed: 3));
        using var torch = Tiny.Fit(ml, data, Tiny.Options(label: false));
        var onnx = torch.ToOnnxRuntime();
        var cursorView = onnx.Transform(data);
        onnx.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => onnx.Transform(data));
        Assert.ThrowsExactly<ObjectDisposedException>(() => cursorView.GetColumn<float[]>("Features").ToList());
        onnx.Dispose();   // again: nothing
        Assert.HasCount(8, Tiny.Features(torch, data), "the TorchSharp transformer is not owned by the ONNX Runtime one");
    }

    /// <summary>The columns both add: same names, types and annotations; values within the bound, Booleans and keys equal.</summary>
    private void AssertSameColumns(MLContext ml, ITransformer torch, ITransformer onnx, IDataView data, string what)
    {
        var expected = torch.Transform(data);
        var actual = onnx.Transform(data);
        int first = data.Schema.Count;
        Assert.AreEqual(expected.Schema.Count, actual.Schema.Count, $"{what}: column count");
        double diff = 0;
        for (int i = first; i < expected.Schema.Count; i++)
        {
            var e = expected.Schema[i];
            var a = actual.Schema[i];
            Assert.AreEqual(e.Name, a.Name, $"{what}: column {i}");
            Assert.AreEqual(e.Type, a.Type, $"{what}: type of '{e.Name}'");
            CollectionAssert.AreEqual(e.Annotations.Schema.Select(c => (c.Name, c.Type)).ToList(), a.Annotations.Schema.Select(c => (c.Name, c.Type)).ToList(), $"{what}: annotations of '{e.Name}'");
            if (e.Type is VectorDataViewType)
                diff = Math.Max(diff, MaxAbs(expected.GetColumn<float[]>(e.Name).SelectMany(v => v), actual.GetColumn<float[]>(a.Name).SelectMany(v => v)));
            else if (e.Type == NumberDataViewType.Single)
                diff = Math.Max(diff, MaxAbs(expected.GetColumn<float>(e.Name), actual.GetColumn<float>(a.Name)));
            else if (e.Type == BooleanDataViewType.Instance)
                CollectionAssert.AreEqual(expected.GetColumn<bool>(e.Name).ToList(), actual.GetColumn<bool>(a.Name).ToList(), $"{what}: '{e.Name}'");
            else Assert.Fail($"{what}: column '{e.Name}' of type {e.Type} is not compared");
            TestContext.WriteLine($"{what}: '{e.Name}' {e.Type}");
        }
        TestContext.WriteLine($"{what}: max |ONNX Runtime - TorchSharp| = {diff:E3}");
        Assert.IsGreaterThan(0, expected.GetColumn<float[]>("Features").Count(), $"{what}: no rows");
        Assert.IsLessThanOrEqualTo(OnnxExportParityTests.Bound, diff, $"{what}: max |ONNX Runtime - TorchSharp| = {diff:E3}");
    }

    private static void AssertPredictionEnginesAgree(MLContext ml, ITransformer torch, ITransformer onnx, List<Tiny.Row> rows)
    {
        var options = new PredictionEngineOptions { OwnsTransformer = false };
        using var torchEngine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(torch, options);
        using var onnxEngine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(onnx, options);
        foreach (var row in rows)
        {
            double diff = MaxAbs(torchEngine.Predict(row).Features, onnxEngine.Predict(row).Features);
            Assert.IsLessThanOrEqualTo(OnnxExportParityTests.Bound, diff, $"prediction engines: max |ONNX Runtime - TorchSharp| = {diff:E3}");
        }
    }

    /// <summary>No libtorch in an app's output folder or its deps.json (the managed TorchSharp package's bridge may stay).</summary>
    internal static void AssertNoLibTorch(string folder)
    {
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        // libtorch.so, libtorch_cpu.so, libc10.so, torch_cpu.dll, c10.dll, ...; not TorchSharp's bridge (LibTorchSharp).
        var libtorch = files.Where(f => !f!.Contains("TorchSharp", StringComparison.Ordinal)
            && (f.Contains("torch", StringComparison.OrdinalIgnoreCase) || f.StartsWith("c10", StringComparison.OrdinalIgnoreCase) || f.StartsWith("libc10", StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.IsEmpty(libtorch, $"libtorch files in {folder}: {string.Join(", ", libtorch)}");
        var deps = Directory.GetFiles(folder, "*.deps.json").Single();
        var text = File.ReadAllText(deps);
        Assert.DoesNotContain("libtorch-cpu", text, $"{deps} lists a libtorch package");
        Assert.DoesNotContain("TorchSharp-cpu", text, $"{deps} lists TorchSharp-cpu");
        StringAssert.Contains(text, "Microsoft.ML.OnnxRuntime", $"{deps} lacks ONNX Runtime");
    }

    private static double MaxAbs(IEnumerable<float> a, IEnumerable<float> b)
    {
        var x = a.ToList();
        var y = b.ToList();
        Assert.HasCount(x.Count, y, "value count");
        return x.Count == 0 ? 0 : x.Zip(y, (p, q) => Math.Abs((double)p - q)).Max();
    }
}
