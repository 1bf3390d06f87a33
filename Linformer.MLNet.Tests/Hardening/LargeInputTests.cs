using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Hardening;

[TestClass]
public sealed class LargeInputTests
{
    public TestContext TestContext { get; set; } = null!;

    private const int N = 65536;

    public sealed class Row { [VectorType(N * 2)] public float[] Values { get; set; } = new float[N * 2]; }

    /// <summary>
    /// A feed-forward width of 2^18 on 16 sequences of 2^16 positions asks libtorch for one 1 TiB activation: the
    /// allocator refuses it at once (nothing is touched), and Fit and Transform turn that into an
    /// <see cref="InsufficientMemoryException"/> that names the sizes; the process goes on working.
    /// </summary>
    [TestMethod]
    public void AnAllocationBeyondTheMachineIsAClearInsufficientMemoryException()
    {
        // With "always overcommit" a 1 TiB request could succeed and then be touched: do not try it there.
        if (OperatingSystem.IsLinux() && File.Exists("/proc/sys/vm/overcommit_memory") && File.ReadAllText("/proc/sys/vm/overcommit_memory").Trim() == "1")
            Assert.Inconclusive("vm.overcommit_memory = 1: a 1 TiB allocation would not fail fast here.");
        var ml = new MLContext(seed: 1);
        var random = new Random(1);
        var rows = Enumerable.Range(0, 16).Select(_ => new Row { Values = Enumerable.Range(0, N * 2).Select(_ => (float)random.NextDouble()).ToArray() }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Values", OutputColumnName = "Features", SequenceLength = N, ModelWidth = 2, Heads = 1, Depth = 1,
            ProjectedLength = 4, FeedForwardSize = 1 << 18, BatchSize = 16, Epochs = 1,
        };
        long live = Tiny.LiveTensors();

        var fit = Assert.ThrowsExactly<InsufficientMemoryException>(() => ml.Transforms.Linformer(options).Fit(data));
        TestContext.WriteLine($"Fit: {Tiny.Messages(fit)}");
        StringAssert.Contains(fit.Message, "Training step 1 (epoch 1)");
        StringAssert.Contains(fit.Message, $"SequenceLength {N}, BatchSize 16");
        StringAssert.Contains(fit.Message, "1,099,511,627,776 bytes (1.0 TiB)");
        StringAssert.Contains(fit.Message, "Lower BatchSize");
        Assert.AreEqual(live, Tiny.LiveTensors(), "the failed Fit freed its tensors");

        options.Epochs = 0;
        using var model = ml.Transforms.Linformer(options).Fit(data);
        var transform = Assert.ThrowsExactly<InsufficientMemoryException>(() => model.Transform(data).GetColumn<float[]>("Features").ToList());
        TestContext.WriteLine($"Transform: {Tiny.Messages(transform)}");
        StringAssert.Contains(transform.Message, "Encoding a batch of 16 sequence(s)");
        StringAssert.Contains(transform.Message, $"SequenceLength {N}, BatchSize 16");
        StringAssert.Contains(transform.Message, "1,099,511,627,776 bytes");

        // The process and the model survive: a batch of one row asks for 64 GiB, which this machine cannot give either,
        // so check survival with a small model instead.
        using var small = Tiny.Fit(ml, ml.Data.LoadFromEnumerable(Tiny.Rows(8, 1)), Tiny.Options(epochs: 0));
        Assert.HasCount(8, Tiny.Features(small, ml.Data.LoadFromEnumerable(Tiny.Rows(8, 1))));
    }
}
