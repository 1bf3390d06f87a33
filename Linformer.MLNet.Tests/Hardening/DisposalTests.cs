using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Hardening;

[TestClass]
public sealed class DisposalTests
{
    [TestMethod]
    public void DisposedTransformerFreesItsTensorsAndRefusesEveryUse()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(20, 1));
        long start = Tiny.LiveTensors();
        var model = Tiny.Fit(ml, data, Tiny.Options(epochs: 0));
        var view = model.Transform(data);
        var openCursor = view.GetRowCursor(view.Schema);
        Assert.IsTrue(openCursor.MoveNext());
        var openEngine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(model, new PredictionEngineOptions { OwnsTransformer = false });
        openEngine.Predict(Tiny.Rows(1, 3).Single());

        model.Dispose();
        Assert.AreEqual(start, Tiny.LiveTensors(), "every tensor of the network is freed");
        model.Dispose();   // a second Dispose does nothing

        var path = Tiny.TempPath(".zip");
        try
        {
            Assert.ThrowsExactly<ObjectDisposedException>(() => model.Transform(data));
            Assert.ThrowsExactly<ObjectDisposedException>(() => model.GetOutputSchema(data.Schema));
            Assert.ThrowsExactly<ObjectDisposedException>(() => model.GetRowToRowMapper(data.Schema));
            Assert.ThrowsExactly<ObjectDisposedException>(() => ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(model));
            Assert.ThrowsExactly<ObjectDisposedException>(() => ml.Model.SaveAtomically(model, data.Schema, path));
            Assert.IsFalse(File.Exists(path), "a failed atomic save leaves no file");
            // Cursors and engines made before Dispose fail cleanly on their next row instead of touching freed memory.
            Assert.ThrowsExactly<ObjectDisposedException>(() => openCursor.MoveNext());
            Assert.ThrowsExactly<ObjectDisposedException>(() => openEngine.Predict(Tiny.Rows(1, 4).Single()));
            Assert.ThrowsExactly<ObjectDisposedException>(() => model.ParameterCount);
            // Views made before Dispose: new cursors fail at their first MoveNext.
            using var late = view.GetRowCursor(view.Schema);
            Assert.ThrowsExactly<ObjectDisposedException>(() => late.MoveNext());
        }
        finally
        {
            openCursor.Dispose();
            openEngine.Dispose();
            File.Delete(path);
        }
    }

    [TestMethod]
    public void DisposingATransformerChainDisposesTheLinformerInIt()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(20, 1));
        long start = Tiny.LiveTensors();
        var pipeline = ml.Transforms.CopyColumns("Ids", "Tokens")
            .Append(ml.Transforms.Linformer(new LinformerEstimator.Options
            {
                InputColumnName = "Ids", OutputColumnName = "Features", VocabularySize = Tiny.Vocabulary, ModelWidth = 8,
                ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16, Epochs = 0,
            }));
        TransformerChain<LinformerTransformer> chain = pipeline.Fit(data);
        Assert.IsGreaterThan(start, Tiny.LiveTensors());
        chain.Dispose();
        Assert.AreEqual(start, Tiny.LiveTensors(), "TransformerChain.Dispose disposes its LinformerTransformer");
        Assert.ThrowsExactly<ObjectDisposedException>(() => chain.LastTransformer.Transform(data));
        Assert.ThrowsExactly<ObjectDisposedException>(() => chain.Transform(data));
    }

    [TestMethod]
    public void ADefaultPredictionEngineOwnsTheTransformer()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(20, 1));
        var model = Tiny.Fit(ml, data, Tiny.Options(epochs: 0));
        using (var engine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(model))
            engine.Predict(Tiny.Rows(1, 3).Single());
        // ML.NET's default (OwnsTransformer = true): disposing the engine disposed the model.
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.Transform(data));

        using var shared = Tiny.Fit(ml, data, Tiny.Options(epochs: 0));
        using (var engine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(shared, new PredictionEngineOptions { OwnsTransformer = false }))
            engine.Predict(Tiny.Rows(1, 3).Single());
        Assert.HasCount(20, Tiny.Features(shared, data), "OwnsTransformer = false leaves the model usable");
    }

    [TestMethod]
    public void DisposeWhileOtherThreadsEncodeEndsThemWithObjectDisposedException()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(40, 1));
        var model = Tiny.Fit(ml, data, Tiny.Options(epochs: 0));
        const int threads = 4;
        var outcomes = new Exception?[threads];
        var rowsDone = new int[threads];
        using var running = new CountdownEvent(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            bool signalled = false;
            try
            {
                using var engine = ml.Model.CreatePredictionEngine<Tiny.Row, Tiny.Encoded>(model, new PredictionEngineOptions { OwnsTransformer = false });
                var row = Tiny.Rows(1, t).Single();
                while (true)
                {
                    if (t % 2 == 0)
                    {
                        using var cursor = model.Transform(data).GetRowCursor(model.Transform(data).Schema);
                        var getter = cursor.GetGetter<VBuffer<float>>(cursor.Schema["Features"]);
                        VBuffer<float> v = default;
                        while (cursor.MoveNext()) { getter(ref v); Interlocked.Increment(ref rowsDone[t]); }
                    }
                    else { engine.Predict(row); Interlocked.Increment(ref rowsDone[t]); }
                    if (!signalled) { signalled = true; running.Signal(); }
                }
            }
            catch (Exception ex) { outcomes[t] = ex; }
            finally { if (!signalled) running.Signal(); }
        })).ToList();
        workers.ForEach(w => w.Start());
        Assert.IsTrue(running.Wait(TimeSpan.FromMinutes(2)), "workers started");
        model.Dispose();
        workers.ForEach(w => w.Join());
        for (int t = 0; t < threads; t++)
        {
            Assert.IsGreaterThan(0, rowsDone[t], $"thread {t} encoded rows before Dispose");
            Assert.IsInstanceOfType<ObjectDisposedException>(outcomes[t], $"thread {t}: {outcomes[t]}");
        }
    }
}
