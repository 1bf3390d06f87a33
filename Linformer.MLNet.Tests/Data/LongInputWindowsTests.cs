using System.Buffers.Binary;
using System.IO.Compression;
using Linformer.MLNet.Model;
using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Tests.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// <see cref="LinformerLongInputs.Windows"/>: a row longer than N encodes as its windows of N, each encoded as a row of
/// its own by the same network with <see cref="LinformerLongInputs.Truncate"/>, then averaged as docs/long-inputs.md
/// defines (mean pooling and the head: weighted by each window's real positions; first position: plain mean). A row
/// of at most N gives exactly what truncation gives. The twin that encodes the windows by hand is the same saved
/// network (every weight, the head included) under Truncate.
/// </summary>
[TestClass]
public sealed class LongInputWindowsTests
{
    private const int N = 16, Keys = 10;

    /// <summary>
    /// The windowed result is an average computed in double from float32 window encodings, the by-hand one the same
    /// average in double from the same encodings taken in other batches; the two differ by float32 rounding of the
    /// window encodings (batch composition) and of the head's map, well below this bound.
    /// </summary>
    private const double Tolerance = 1e-6;

    public sealed class VarKeys
    {
        [KeyType(Keys)] public uint[] Tokens { get; set; } = [];
        public bool Label { get; set; }
    }

    public sealed class FixedKeys { [KeyType(Keys), VectorType(N)] public uint[] Tokens { get; set; } = []; }

    public sealed class Scored
    {
        public float[] Features { get; set; } = [];
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    private static LinformerEstimator.Options Options(LinformerOutputKind kind = LinformerOutputKind.MeanPooled, bool head = true) => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", SequenceLength = N, ModelWidth = 8, ProjectedLength = 4, Heads = 2,
        Depth = 2, FeedForwardSize = 16, Dropout = 0, FeedForwardDropout = 0, Epochs = 1, BatchSize = 4,
        LabelColumnName = "Label", ScoreColumnName = head ? "Score" : null, OutputKind = kind, LongInputs = LinformerLongInputs.Windows,
    };

    private static VarKeys[] Rows(int seed, params int[] lengths)
    {
        var random = new Random(seed);
        return lengths.Select(length => new VarKeys
        {
            Tokens = Enumerable.Range(0, length).Select(_ => (uint)random.Next(1, Keys + 1)).ToArray(),
            Label = random.Next(2) == 1,
        }).ToArray();
    }

    /// <summary>Rows shorter than N, N, just over N, several windows, and 7 windows (more than a batch of 4: the row spans forward passes).</summary>
    private static readonly int[] ProbeLengths = [5, 16, 17, 40, 100, 33, 1, 48];

    /// <summary>The same network (weights and head) with <see cref="LinformerLongInputs.Truncate"/>: the encoding of a window by hand.</summary>
    private static LinformerTransformer TruncateTwin(MLContext ml, LinformerTransformer model)
    {
        var network = new LinformerNetwork(model.Spec);
        using (no_grad())
        {
            var source = model.Network.state_dict();
            foreach (var (name, tensor) in network.state_dict()) tensor.copy_(source[name]);
        }
        network.eval();
        var settings = model.Settings with { Binding = model.Binding with { LongInputs = LinformerLongInputs.Truncate } };
        return new LinformerTransformer(ml, network, CPU, settings);
    }

    private static List<Scored> Score(ITransformer model, MLContext ml, IEnumerable<VarKeys> rows)
        => ml.Data.CreateEnumerable<Scored>(model.Transform(ml.Data.LoadFromEnumerable(rows)), reuseRowObject: false).ToList();

    private static List<float[]> Features(ITransformer model, MLContext ml, IEnumerable<VarKeys> rows) => Tiny.Features(model, ml.Data.LoadFromEnumerable(rows));

    [TestMethod]
    [DataRow(LinformerOutputKind.MeanPooled)]
    [DataRow(LinformerOutputKind.FirstPosition)]
    public void WindowedRowsEqualTheirWindowsEncodedByHandAndAveraged(LinformerOutputKind kind)
    {
        var ml = new MLContext(seed: 3);
        using var model = ml.Transforms.Linformer(Options(kind)).Fit(ml.Data.LoadFromEnumerable(Rows(1, 5, 16, 23, 40, 9, 17, 3, 30)));
        using var twin = TruncateTwin(ml, model);
        var probe = Rows(2, ProbeLengths);

        // By hand: every window of every row as a row of its own, encoded by the twin.
        var windows = probe.Select(r => r.Tokens.Chunk(N).Select(w => new VarKeys { Tokens = w }).ToArray()).ToArray();
        var encodedWindows = Score(twin, ml, windows.SelectMany(w => w));
        var actual = Score(model, ml, probe);
        double largest = 0;
        int next = 0;
        for (int r = 0; r < probe.Length; r++)
        {
            var mine = encodedWindows.Skip(next).Take(windows[r].Length).ToArray();
            next += windows[r].Length;
            double[] weights = windows[r].Select(w => kind == LinformerOutputKind.FirstPosition ? 1.0 : w.Tokens.Length).ToArray();
            double[] realPositions = windows[r].Select(w => (double)w.Tokens.Length).ToArray();
            for (int j = 0; j < actual[r].Features.Length; j++)
            {
                double expected = mine.Select((e, w) => weights[w] * e.Features[j]).Sum() / weights.Sum();
                largest = Math.Max(largest, Math.Abs(expected - actual[r].Features[j]));
                Assert.AreEqual(expected, actual[r].Features[j], Tolerance, $"{kind}: row {r} ({probe[r].Tokens.Length} positions, {mine.Length} windows), feature {j}");
            }
            // The head reads the row's mean-pooled encoding; its log-odds are linear in it, so they average like it.
            double score = mine.Select((e, w) => realPositions[w] * e.Score).Sum() / realPositions.Sum();
            largest = Math.Max(largest, Math.Abs(score - actual[r].Score));
            Assert.AreEqual(score, actual[r].Score, Tolerance, $"{kind}: row {r} ({mine.Length} windows), Score (log-odds)");
            Assert.AreEqual(1 / (1 + Math.Exp(-actual[r].Score)), actual[r].Probability, Tolerance, $"row {r}: Probability = sigmoid(Score)");
        }
        Assert.IsTrue(probe.Any(r => r.Tokens.Length > 4 * N), "a row spans more than one batch of windows");
        Console.WriteLine($"{kind}: largest difference to the windows by hand {largest:E2} over {probe.Length} rows, {encodedWindows.Count} windows");
    }

    [TestMethod]
    public void RowsOfAtMostNGiveExactlyTheTruncateOutput()
    {
        var ml = new MLContext(seed: 5);
        using var model = ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(Rows(1, 5, 16, 23, 40, 9, 17)));
        using var twin = TruncateTwin(ml, model);
        var probe = Rows(3, 5, 16, 1, 9, 12, 16, 3);

        // Cursors: the same batches of rows, one window each.
        var windowed = Score(model, ml, probe);
        var truncated = Score(twin, ml, probe);
        Tiny.AssertBitIdentical(truncated.Select(s => s.Features).ToList(), windowed.Select(s => s.Features).ToList(), "features, cursor");
        Tiny.AssertBitIdentical(truncated.Select(s => new[] { s.Score, s.Probability }).ToList(), windowed.Select(s => new[] { s.Score, s.Probability }).ToList(), "head, cursor");

        // Prediction engines: one row at a time, among them rows longer than N whose neighbours must not matter.
        using var windowedEngine = ml.Model.CreatePredictionEngine<VarKeys, Scored>(model, new PredictionEngineOptions { OwnsTransformer = false });
        using var truncatedEngine = ml.Model.CreatePredictionEngine<VarKeys, Scored>(twin, new PredictionEngineOptions { OwnsTransformer = false });
        foreach (var row in Rows(4, 7, 40, 16, 100, 2))
        {
            var w = windowedEngine.Predict(row);
            if (row.Tokens.Length > N) continue;
            var t = truncatedEngine.Predict(row);
            Tiny.AssertBitIdentical([t.Features, [t.Score, t.Probability]], [w.Features, [w.Score, w.Probability]], $"engine, row of {row.Tokens.Length}");
        }
    }

    [TestMethod]
    [DataRow(LinformerOutputKind.MeanPooled)]
    [DataRow(LinformerOutputKind.FirstPosition)]
    public void LongRowsDifferFromTruncationAndAllMaskedWindowsAreLeftOut(LinformerOutputKind kind)
    {
        var ml = new MLContext(seed: 7);
        var o = Options(kind, head: false);
        o.PaddingTokenId = 0;   // key 1: masked wherever it stands
        using var model = ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(Rows(1, 5, 16, 23, 40, 9, 17)));
        using var twin = TruncateTwin(ml, model);

        // A second window of padding only adds nothing: the row encodes as its first window alone.
        var first = Rows(5, N)[0].Tokens.Select(t => t == 1 ? 2u : t).ToArray();
        var padded = new VarKeys { Tokens = [.. first, .. Enumerable.Repeat(1u, N + 3)] };
        var alone = new VarKeys { Tokens = first };
        Tiny.AssertBitIdentical(Features(twin, ml, [alone]), Features(model, ml, [padded]),
            "a row whose later windows are all padding");

        // A row longer than N reads all of it: not what truncation keeps.
        var longRow = Rows(6, 3 * N);
        var windowed = Features(model, ml, longRow)[0];
        var truncated = Features(twin, ml, longRow)[0];
        Assert.IsTrue(windowed.Zip(truncated).Any(p => Math.Abs(p.First - p.Second) > 1e-4), "windows of a long row equal its first N positions");

        // A row of padding only is refused as with truncation.
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Features(model, ml, [new VarKeys { Tokens = Enumerable.Repeat(1u, 2 * N + 1).ToArray() }]));
        StringAssert.Contains(ex.Message, "Row 0 has no real position");
    }

    [TestMethod]
    public void AVeryLongRowEncodesInBatchesOfWindows()
    {
        var ml = new MLContext(seed: 9);
        using var model = ml.Transforms.Linformer(Options(head: false)).Fit(ml.Data.LoadFromEnumerable(Rows(1, 5, 16, 23, 40)));
        using var twin = TruncateTwin(ml, model);
        var row = Rows(8, 200 * N + 5);                          // 201 windows, 4 per forward pass
        var windows = row[0].Tokens.Chunk(N).Select(w => new VarKeys { Tokens = w }).ToArray();
        var byHand = Features(twin, ml, windows);
        var actual = Features(model, ml, row)[0];
        for (int j = 0; j < actual.Length; j++)
        {
            double expected = byHand.Select((e, w) => windows[w].Tokens.Length * (double)e[j]).Sum() / row[0].Tokens.Length;
            Assert.AreEqual(expected, actual[j], Tolerance, $"feature {j} of a row of {row[0].Tokens.Length} positions");
        }
    }

    [TestMethod]
    public void InvalidCombinationsAreErrorsNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        var o = Options();
        o.OutputKind = LinformerOutputKind.Sequence;
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(o));
        Assert.AreEqual("LongInputs", ex.ParamName);
        StringAssert.Contains(ex.Message, "LongInputs (Windows) needs a pooled output");

        o = Options();
        o.LongInputs = (LinformerLongInputs)7;
        var range = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(o));
        Assert.AreEqual("LongInputs", range.ParamName);

        var fixedData = ml.Data.LoadFromEnumerable(new[] { new FixedKeys { Tokens = Enumerable.Repeat(2u, N).ToArray() } });
        o = Options(head: false);
        o.LabelColumnName = null;
        foreach (var attempt in new Action[] { () => ml.Transforms.Linformer(o).Fit(fixedData), () => ml.Transforms.Linformer(o).GetOutputSchema(LinformerEstimator.ShapeOf(fixedData.Schema)) })
        {
            ex = Assert.ThrowsExactly<ArgumentException>(attempt);
            Assert.AreEqual("LongInputs", ex.ParamName);
            StringAssert.Contains(ex.Message, "LongInputs (Windows) applies to variable-length input columns; column 'Tokens' has a fixed length");
        }
    }

    [TestMethod]
    public void OnnxExportWritesOneWindowAndRefusesTheHead()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(1, 5, 16, 23, 40));
        using (var withHead = ml.Transforms.Linformer(Options()).Fit(train))
        {
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => withHead.ExportToOnnx(new MemoryStream()));
            StringAssert.Contains(ex.Message, "LongInputs = Windows");
        }
        using var features = ml.Transforms.Linformer(Options(head: false)).Fit(train);
        using var stream = new MemoryStream();
        features.ExportToOnnx(stream);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(stream.ToArray());
        CollectionAssert.AreEqual(new[] { -1, N }, session.InputMetadata[Linformer.MLNet.Onnx.LinformerOnnxExporter.InputName].Dimensions, "one window of N positions");
    }

    [TestMethod]
    public void AWindowedModelSavesAsFormat15ReadableBy15OnlyAndLoadsBitIdentical()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(Rows(1, 5, 16, 23, 40));
        using var model = ml.Transforms.Linformer(Options()).Fit(train);
        var path = Tiny.TempPath(".zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var (written, readable) = ModelFormatCompatibilityTests.Versions(path);
            Assert.AreEqual(0x00010005u, written, "version written");
            Assert.AreEqual(0x00010005u, readable, "version readable: an older reader would cut long rows instead");
            using var loaded = (LinformerTransformer)new MLContext().Model.Load(path, out _);
            Assert.AreEqual(LinformerLongInputs.Windows, loaded.Binding.LongInputs);
            var probe = Rows(2, ProbeLengths);
            var before = Score(model, ml, probe);
            var after = Score(loaded, ml, probe);
            Tiny.AssertBitIdentical(before.Select(s => s.Features).ToList(), after.Select(s => s.Features).ToList(), "saved and loaded windowed model: features");
            Tiny.AssertBitIdentical(before.Select(s => new[] { s.Score }).ToList(), after.Select(s => new[] { s.Score }).ToList(), "saved and loaded windowed model: Score");

            // The same settings stamped as a 1.4 file: refused, since no 1.4 writer stores windows.
            using (var archive = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                var entry = archive.GetEntry("TransformerChain/Model.key")!;
                byte[] bytes;
                using (var stream = entry.Open()) using (var buffer = new MemoryStream()) { stream.CopyTo(buffer); bytes = buffer.ToArray(); }
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(72), 0x00010004u);
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(76), 0x00010004u);
                entry.Delete();
                using var replacement = archive.CreateEntry("TransformerChain/Model.key").Open();
                replacement.Write(bytes);
            }
            // ML.NET calls the loader through reflection and does not unwrap (docs/persistence.md).
            var ex = Assert.ThrowsExactly<System.Reflection.TargetInvocationException>(() => new MLContext().Model.Load(path, out _));
            Assert.IsInstanceOfType<InvalidDataException>(ex.InnerException, ex.ToString());
            StringAssert.Contains(ex.InnerException.Message, "LongInputs (Windows) needs format 1.5");
        }
        finally { File.Delete(path); }
    }
}
