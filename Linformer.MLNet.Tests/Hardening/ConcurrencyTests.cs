using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Hardening;

[TestClass]
public sealed class ConcurrencyTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void EightThreadsOnOneLoadedModelGiveBitIdenticalResults()
    {
        var ml = new MLContext(seed: 11);
        var path = Tiny.TempPath(".zip");
        try
        {
            var train = ml.Data.LoadFromEnumerable(Tiny.Rows(24, 1));
            using (var fitted = Tiny.Fit(ml, train)) ml.Model.Save(fitted, train.Schema, path);
            var rows = Tiny.Rows(30, 7).ToArray();                       // 30 rows, batch 4: a partial last batch
            var data = ml.Data.LoadFromEnumerable(rows);

            var loaded = (LinformerTransformer)new MLContext().Model.Load(path, out _);
            try
            {
                // Single-threaded reference: the cursor path and the PredictionEngine path.
                var expected = Tiny.Features(loaded, data);
                List<float[]> Predict()
                {
                    using var engine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(loaded, new PredictionEngineOptions { OwnsTransformer = false });
                    return rows.Select(r => engine.Predict(r).Features.ToArray()).ToList();
                }
                var expectedPredictions = Predict();
                // A PredictionEngine encodes batches of one row, Transform batches of BatchSize rows: CPU kernels block
                // the two shapes differently, so the two paths agree to rounding, not bit for bit.
                for (int i = 0; i < rows.Length; i++)
                    for (int j = 0; j < expected[i].Length; j++)
                        Assert.AreEqual(expected[i][j], expectedPredictions[i][j], 1e-5f, $"PredictionEngine vs Transform, row {i}, value {j}");

                const int threads = 8, repeats = 3;
                var results = new List<float[]>[threads];
                var errors = new Exception?[threads];
                using var start = new Barrier(threads);
                var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
                {
                    try
                    {
                        start.SignalAndWait();
                        for (int r = 0; r < repeats; r++)
                        {
                            // Even threads: a cursor each; odd threads: a prediction engine each.
                            var got = t % 2 == 0 ? Tiny.Features(loaded, data) : Predict();
                            if (r == 0) results[t] = got;
                            else Tiny.AssertBitIdentical(results[t], got, $"thread {t}, repeat {r}");
                        }
                    }
                    catch (Exception ex) { errors[t] = ex; }
                })).ToList();
                workers.ForEach(w => w.Start());
                workers.ForEach(w => w.Join());
                for (int t = 0; t < threads; t++)
                {
                    Assert.IsNull(errors[t], $"thread {t}: {errors[t]}");
                    if (t % 2 == 0) Tiny.AssertBitIdentical(expected, results[t], $"thread {t} (cursor) vs single-threaded Transform");
                    else Tiny.AssertBitIdentical(expectedPredictions, results[t], $"thread {t} (PredictionEngine) vs single-threaded PredictionEngine");
                }

                // Two cursors of one view moved at different speeds on one thread each keep their own batch.
                var view = loaded.Transform(data);
                using var a = view.GetRowCursor(view.Schema);
                using var b = view.GetRowCursor(view.Schema);
                var ga = a.GetGetter<VBuffer<float>>(view.Schema["Features"]);
                var gb = b.GetGetter<VBuffer<float>>(view.Schema["Features"]);
                VBuffer<float> va = default, vb = default;
                for (int i = 0; i < rows.Length; i++)
                {
                    Assert.IsTrue(a.MoveNext());
                    ga(ref va);
                    Tiny.AssertBitIdentical(new[] { expected[i] }, new[] { va.DenseValues().ToArray() }, $"slow cursor, row {i}");
                    for (int k = 0; k < 2 && b.MoveNext(); k++)
                    {
                        gb(ref vb);
                        Tiny.AssertBitIdentical(new[] { expected[(int)b.Position] }, new[] { vb.DenseValues().ToArray() }, $"fast cursor, row {b.Position}");
                    }
                }
            }
            finally { loaded.Dispose(); }
        }
        finally { File.Delete(path); }
    }
}
