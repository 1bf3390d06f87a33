using System.Runtime.InteropServices;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Tests.Modules;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Linformer.MLNet.Tests;

/// <summary>
/// The precision option on the ML.NET path. This CPU may or may not compute bfloat16 natively, so the tests fix the
/// answer with <see cref="BFloat16Support.Assume"/>: "native" to exercise bfloat16 (libtorch emulates it where the
/// CPU lacks it: same numbers, only slower), "not native" to exercise the fallback.
/// </summary>
[TestClass]
public sealed class LinformerPrecisionTests
{
    public TestContext TestContext { get; set; } = null!;

    private const int N = 16;
    private const int Vocabulary = 8;

    /// <summary>
    /// Accuracy points by which mixed-precision training may differ from float32 training on the held-out rows of
    /// the counting task (docs/precision.md states it): 200 rows, so one row is half a point. Measured: 91.0% both.</summary>
    private const double AccuracyMargin = 2.0;

    private sealed class Row
    {
        [VectorType(N)] public int[] Tokens { get; set; } = new int[N];
        public bool Label { get; set; }
    }

    private sealed class Scored
    {
        public bool PredictedLabel { get; set; }
    }

    /// <summary>Label: more than half the tokens are small ids. Learnable from mean-pooled embeddings in a few epochs.</summary>
    private static List<Row> CountingRows(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>();
        while (rows.Count < count)
        {
            var tokens = new int[N];
            for (int p = 0; p < N; p++) tokens[p] = random.Next(Vocabulary);
            int small = tokens.Count(t => t < Vocabulary / 2);
            if (small == N / 2) continue;   // no ties
            rows.Add(new Row { Tokens = tokens, Label = small > N / 2 });
        }
        return rows;
    }

    private static LinformerEstimator.Options Options(LinformerPrecision precision, int epochs) => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = "Label", ScoreColumnName = "Score",
        VocabularySize = Vocabulary, ModelWidth = 16, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 32,
        Epochs = epochs, BatchSize = 16, LearningRate = 3e-3, Precision = precision,
    };

    [TestMethod]
    public void ALoadedModelRunsBFloat16AtRunTimeAndSwitchesBackBitIdentically()
    {
        var ml = new MLContext(seed: 3);
        var data = ml.Data.LoadFromEnumerable(CountingRows(40, 1));
        using var fitted = ml.Transforms.Linformer(Options(LinformerPrecision.Float32, epochs: 1)).Fit(data);
        var path = Tiny.TempPath(".zip");
        try
        {
            ml.Model.Save(fitted, data.Schema, path);
            var fp32 = Tiny.Features(fitted, data);
            using var loaded = (LinformerTransformer)new MLContext().Model.Load(path, out _);
            Assert.AreEqual(LinformerPrecision.Float32, loaded.Precision, "a loaded model starts in float32: precision is not saved");
            Tiny.AssertBitIdentical(fp32, Tiny.Features(loaded, data), "loaded, Float32");

            using (BFloat16Support.Assume(native: true)) loaded.Precision = LinformerPrecision.BFloat16;
            Assert.AreEqual(LinformerPrecision.BFloat16, loaded.Precision);
            var bf16 = Tiny.Features(loaded, data);
            using (var expected = torch.tensor(fp32.SelectMany(r => r).ToArray()))
            using (var actual = torch.tensor(bf16.SelectMany(r => r).ToArray()))
            {
                double relative = PrecisionBound.Relative(actual, expected);
                TestContext.WriteLine($"pooled features, bf16 vs fp32: {relative:E2}");
                Assert.IsLessThanOrEqualTo(PrecisionBound.Output, relative, "bf16 features vs float32");
                Assert.IsGreaterThan(0.0, relative, "the features really were computed in bf16");
            }
            // The prediction engine reads the same setting.
            var engine = ml.Model.CreatePredictionEngine<Row, Scored>(loaded, new PredictionEngineOptions { OwnsTransformer = false });
            var scored = loaded.Transform(data).GetColumn<bool>("PredictedLabel").ToList();
            Assert.AreEqual(scored[0], engine.Predict(CountingRows(40, 1)[0]).PredictedLabel, "engine and Transform agree in bf16");

            loaded.Precision = LinformerPrecision.Float32;
            Tiny.AssertBitIdentical(fp32, Tiny.Features(loaded, data), "Float32 again after BFloat16");

            // Saving a model that runs in bf16 writes the float32 weights: the file loads as the original.
            using (BFloat16Support.Assume(native: true)) loaded.Precision = LinformerPrecision.BFloat16;
            var again = Tiny.TempPath(".zip");
            try
            {
                ml.Model.Save(loaded, data.Schema, again);
                using var reloaded = (LinformerTransformer)new MLContext().Model.Load(again, out _);
                Tiny.AssertBitIdentical(fp32, Tiny.Features(reloaded, data), "saved while in bf16, reloaded");
            }
            finally { File.Delete(again); }
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void BFloat16OnACpuWithoutItRunsFloat32AndLogsAWarning()
    {
        var ml = new MLContext(seed: 3);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        var data = ml.Data.LoadFromEnumerable(CountingRows(40, 1));
        using var fp32Model = new MLContext(seed: 3).Transforms.Linformer(Options(LinformerPrecision.Float32, epochs: 1)).Fit(data);
        using (BFloat16Support.Assume(native: false))
        {
            using var model = ml.Transforms.Linformer(Options(LinformerPrecision.BFloat16, epochs: 1)).Fit(data);
            Assert.AreEqual(LinformerPrecision.Float32, model.Precision, "Fit fell back to float32");
            Assert.HasCount(1, warnings, "one warning for the Fit");
            StringAssert.Contains(warnings[0], "no native bfloat16");
            StringAssert.Contains(warnings[0], "Float32 is used");
            Tiny.AssertSameWeights(Tiny.Weights(fp32Model), Tiny.Weights(model), "the fallback trains exactly as float32");

            model.Precision = LinformerPrecision.BFloat16;
            Assert.AreEqual(LinformerPrecision.Float32, model.Precision, "the transformer stays in float32");
            Assert.HasCount(2, warnings, "and says so again");
            Tiny.AssertBitIdentical(Tiny.Features(fp32Model, data), Tiny.Features(model, data), "fallback outputs");
        }
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => fp32Model.Precision = (LinformerPrecision)9);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(Options((LinformerPrecision)9, 1)));
        StringAssert.Contains(ex.Message, "Precision (9) is not one of Float32, BFloat16.");
    }

    [TestMethod]
    public void TheCpuCheckAgreesWithTheCpuFlags()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
            Assert.Inconclusive("The CPU flags are read from /proc/cpuinfo, on x64 Linux only.");
        var flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal)).Split(' ');
        bool listed = flags.Contains("avx512_bf16");
        TestContext.WriteLine($"avx512_bf16 in /proc/cpuinfo: {listed}; libtorch: {BFloat16Support.CpuHasNative}");
        Assert.AreEqual(listed, BFloat16Support.CpuHasNative, "libtorch's at::cpu::is_avx512_bf16_supported() vs the kernel's CPU flags");
    }

    [TestMethod]
    public void MixedPrecisionFitReachesTheAccuracyOfFloat32Training()
    {
        var train = CountingRows(192, 2);
        var test = CountingRows(200, 3);
        double Accuracy(LinformerPrecision precision)
        {
            var ml = new MLContext(seed: 9);
            using var model = ml.Transforms.Linformer(Options(precision, epochs: 5)).Fit(ml.Data.LoadFromEnumerable(train));
            Assert.AreEqual(precision, model.Precision);
            var predicted = model.Transform(ml.Data.LoadFromEnumerable(test)).GetColumn<bool>("PredictedLabel").ToList();
            return 100.0 * predicted.Zip(test).Count(p => p.First == p.Second.Label) / test.Count;
        }
        double fp32 = Accuracy(LinformerPrecision.Float32);
        double bf16;
        using (BFloat16Support.Assume(native: true)) bf16 = Accuracy(LinformerPrecision.BFloat16);
        TestContext.WriteLine($"held-out accuracy: float32 {fp32:F1}%, mixed bf16 {bf16:F1}%");
        Assert.IsGreaterThanOrEqualTo(85.0, fp32, "the task is learnable in float32");
        Assert.IsLessThanOrEqualTo(AccuracyMargin, Math.Abs(bf16 - fp32), $"mixed precision {bf16:F1}% vs float32 {fp32:F1}%");
    }

    [TestMethod]
    public void MixedPrecisionResumesExactlyAndPrecisionIsPartOfTheCheckpointIdentity()
    {
        var rows = CountingRows(48, 4);
        var folder = Directory.CreateTempSubdirectory("linformer-bf16-checkpoint-");
        using var native = BFloat16Support.Assume(native: true);
        try
        {
            LinformerEstimator.Options Resumable()
            {
                var o = Options(LinformerPrecision.BFloat16, epochs: 2);
                o.BatchSize = 8;
                o.Dropout = 0.2;
                o.FeedForwardDropout = 0.2;
                return o;
            }
            Dictionary<string, byte[]> expected;
            var ml = new MLContext(seed: 6);
            var data = ml.Data.LoadFromEnumerable(rows);
            using (var model = new MLContext(seed: 6).Transforms.Linformer(Resumable()).Fit(data)) expected = Tiny.Weights(model);

            var checkpoint = Path.Combine(folder.FullName, "run.ckpt");
            using var cts = new CancellationTokenSource();
            var b = Resumable();
            b.CheckpointPath = checkpoint;
            b.CheckpointInterval = 4;
            b.CancellationToken = cts.Token;
            b.Progress = new ProgressAction(p => { if (p.Step == 8 && !p.IsEpochEnd) cts.Cancel(); });
            Assert.ThrowsExactly<OperationCanceledException>(() => new MLContext(seed: 6).Transforms.Linformer(b).Fit(data));

            var resumed = Resumable();
            resumed.CheckpointPath = checkpoint;
            resumed.ResumeFromCheckpoint = true;
            using (var model = new MLContext(seed: 6).Transforms.Linformer(resumed).Fit(data))
                Tiny.AssertSameWeights(expected, Tiny.Weights(model), "bf16: resumed at step 8 vs uninterrupted");

            var other = Resumable();
            other.CheckpointPath = checkpoint;
            other.ResumeFromCheckpoint = true;
            other.Precision = LinformerPrecision.Float32;
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext(seed: 6).Transforms.Linformer(other).Fit(data));
            TestContext.WriteLine(ex.Message);
            StringAssert.Contains(ex.Message, "Precision: checkpoint BFloat16, this Fit Float32");
        }
        finally { folder.Delete(recursive: true); }
    }

    private sealed class ProgressAction(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
    {
        public void Report(LinformerTrainingProgress value) => report(value);
    }
}
