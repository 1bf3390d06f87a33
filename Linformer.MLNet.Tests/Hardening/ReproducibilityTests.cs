using Microsoft.ML;

namespace Linformer.MLNet.Tests.Hardening;

[TestClass]
public sealed class ReproducibilityTests
{
    [TestMethod]
    public void SameSeedAndDataGiveBitIdenticalWeightsAndSavedFiles()
    {
        var rows = Tiny.Rows(24, 5).ToList();
        (Dictionary<string, byte[]> weights, byte[] file) Train(int seed, bool supervised)
        {
            var ml = new MLContext(seed: seed);
            var data = ml.Data.LoadFromEnumerable(rows);
            var options = Tiny.Options(epochs: 2, label: supervised);
            options.Dropout = 0.2;
            options.FeedForwardDropout = 0.2;
            options.ValidationFraction = 0.25;
            options.EarlyStoppingPatience = 1;
            using var model = ml.Transforms.Linformer(options).Fit(data);
            var path = Tiny.TempPath(".zip");
            try
            {
                ml.Model.Save(model, data.Schema, path);
                using var zip = System.IO.Compression.ZipFile.OpenRead(path);
                var entry = zip.Entries.Single(e => e.FullName.EndsWith("LinformerWeights", StringComparison.Ordinal));
                using var s = entry.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                return (Tiny.Weights(model), ms.ToArray());
            }
            finally { File.Delete(path); }
        }

        foreach (bool supervised in new[] { true, false })
        {
            var a = Train(12, supervised);
            var b = Train(12, supervised);
            Tiny.AssertSameWeights(a.weights, b.weights, $"same seed ({(supervised ? "supervised" : "self-supervised")})");
            CollectionAssert.AreEqual(a.file, b.file, "the saved weights entries are byte-identical");
            var c = Train(13, supervised);
            Assert.IsTrue(a.weights.Any(kv => !kv.Value.AsSpan().SequenceEqual(c.weights[kv.Key])), "another seed gives other weights");
        }
    }
}
