using System.Diagnostics;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;
using static Linformer.MLNet.Benchmarks.Markdown;

namespace Linformer.MLNet.Benchmarks;

// Shapes: B batch, N sequence length, I input channels (float input), C model width.

/// <summary>
/// One ML.NET case: side A (the ML.NET call) against side B (the same network driven by hand), sampled in turns, with
/// <see cref="Parts"/> timed alongside (Transform: reading rows, building tensors; Fit: time per optimizer step of A
/// and of B). <see cref="Items"/> is the rows or sequences one sample of a side processes.
/// </summary>
internal sealed record Comparison(string Id, MlNetModel Model, double Items, Timing A, Timing B, IReadOnlyList<Timing> Parts)
{
    /// <summary>B's time ÷ A's time of each pair of samples taken back to back (1 = no overhead).</summary>
    public IReadOnlyList<double> Ratios => B.SamplesMs.Zip(A.SamplesMs, (b, a) => b / a).ToList();
    /// <summary>A's throughput ÷ B's: the median of the pairs' ratios.</summary>
    public double Ratio => Timing.Median(Ratios);
    public double ARate => Items / (A.MedianMs * 1e-3);
    public double BRate => Items / (B.MedianMs * 1e-3);
}

/// <summary>
/// The ML.NET sections: the overhead of <c>Transform</c> and <c>PredictionEngine</c> over the network they run, and
/// the throughput of <c>Fit</c> against a hand-written training loop. Each comparison runs both sides in the same
/// process, in turns (A B B A …), so that a slow phase of the shared machine falls on both alike.
/// </summary>
internal sealed class MlNetBenchmarks : IBenchmarkSection
{
    // The rows the cases read and write; vector sizes are set per model by Schema.
    public sealed class TokenRow { public int[] Tokens { get; set; } = []; public bool Label { get; set; } }
    public sealed class FloatRow { public float[] Values { get; set; } = []; public bool[] Mask { get; set; } = []; }
    public sealed class EncodedRow { public float[] Features { get; set; } = []; }

    private const string TransformPrefix = "overhead/transform/", PredictPrefix = "overhead/predict/", FitPrefix = "fit/";

    public List<Comparison> Results { get; } = [];

    /// <summary>The cases, as ids (see CaseFilter) with what measures them.</summary>
    private static IEnumerable<(string Id, Func<string, Comparison> Measure)> Cases(MlNetSettings s)
    {
        foreach (var m in s.Transform)
            yield return ($"{TransformPrefix}{m.Name}-n{m.SequenceLength}-b{m.Batch}", id => TransformOverhead(id, m, s.TransformRows, s.TransformRounds));
        yield return ($"{PredictPrefix}{s.Predict.Name}-n{s.Predict.SequenceLength}", id => PredictLatency(id, s.Predict, s.PredictWarmups, s.PredictCalls));
        yield return ($"{FitPrefix}{s.Fit.Name}-n{s.Fit.SequenceLength}-b{s.Fit.Batch}", id => FitThroughput(id, s.Fit, s.FitRows, s.FitEpochs, s.FitRounds));
    }

    public IEnumerable<string> CaseIds(RunProfile profile) => Cases(profile.MlNet).Select(c => c.Id);

    public void Run(BenchmarkRun run)
    {
        foreach (var (id, measure) in Cases(run.Profile.MlNet).Where(c => run.Filter.Matches(c.Id)))
        {
            run.WaitForQuiet();
            var r = measure(id);
            Results.Add(r);
            run.Log.WriteLine($"{id}: ML.NET median {r.A.MedianMs:F3} ms, raw {r.B.MedianMs:F3} ms, ratio {r.Ratio:F3}");
        }
    }

    /// <summary>Token rows: ids in [1, V) up to the real length, then padding id 0; label = parity of the first id.</summary>
    internal static List<TokenRow> TokenRows(MlNetModel m, int count, int seed) => Rows(m, count, seed, (random, real) =>
    {
        var tokens = new int[m.SequenceLength];
        for (int i = 0; i < real; i++) tokens[i] = 1 + random.Next(m.Vocabulary - 1);
        return new TokenRow { Tokens = tokens, Label = tokens[0] % 2 == 0 };
    });

    /// <summary>Float rows: N × I values in [−1, 1) up to the real length, zeros and mask false after it.</summary>
    private static List<FloatRow> FloatRows(MlNetModel m, int count, int seed) => Rows(m, count, seed, (random, real) =>
    {
        var values = new float[m.SequenceLength * m.InputChannels];
        for (int i = 0; i < real * m.InputChannels; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return new FloatRow { Values = values, Mask = Enumerable.Range(0, m.SequenceLength).Select(p => p < real).ToArray() };
    });

    /// <summary>Rows made by <paramref name="row"/>(random, real length), the real length drawn between N/2 and N.</summary>
    private static List<T> Rows<T>(MlNetModel m, int count, int seed, Func<Random, int, T> row)
    {
        var random = new Random(seed);
        int n = m.SequenceLength;
        return Enumerable.Range(0, count).Select(_ => row(random, n / 2 + random.Next(n - n / 2 + 1))).ToList();
    }

    internal static SchemaDefinition Schema(MlNetModel m)
    {
        var def = SchemaDefinition.Create(m.Tokens ? typeof(TokenRow) : typeof(FloatRow));
        if (m.Tokens) def[nameof(TokenRow.Tokens)].ColumnType = new VectorDataViewType(NumberDataViewType.Int32, m.SequenceLength);
        else def[nameof(FloatRow.Values)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, m.SequenceLength * m.InputChannels);
        if (!m.Tokens) def[nameof(FloatRow.Mask)].ColumnType = new VectorDataViewType(BooleanDataViewType.Instance, m.SequenceLength);
        return def;
    }

    /// <summary>A context on the benchmark's device (ML.NET's GPU settings), seeded.</summary>
    internal static MLContext NewContext()
    {
        var ml = new MLContext(seed: 1);
        if (BenchDevice.IsCuda) (ml.GpuDeviceId, ml.FallbackToCpu) = (Math.Max(0, BenchDevice.Device.index), false);
        return ml;
    }

    internal static LinformerEstimator.Options Options(MlNetModel m, int epochs, bool label) => new()
    {
        InputColumnName = m.Tokens ? nameof(TokenRow.Tokens) : nameof(FloatRow.Values), OutputColumnName = nameof(EncodedRow.Features),
        MaskColumnName = m.Tokens ? null : nameof(FloatRow.Mask), PaddingTokenId = m.Tokens ? 0 : null, LabelColumnName = label ? nameof(TokenRow.Label) : null,
        VocabularySize = m.Tokens ? m.Vocabulary : 0, SequenceLength = m.SequenceLength, Channels = m.Tokens ? 0 : m.InputChannels,
        ModelWidth = m.Width, ProjectedLength = m.ProjectedLength, Heads = m.Heads, Depth = m.Depth, FeedForwardSize = m.FeedForward,
        BatchSize = m.Batch, Epochs = epochs,
    };

    /// <summary>The raw network on one batch: its mean-pooled output copied out as Transform copies it; returns the first value.</summary>
    private static float RawForward(LinformerNetwork network, (Tensor X, Tensor? Mask) batch, float[] output)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (x, mask) = batch;
        var cpu = LinformerNetwork.Pool(network.forward(x, mask), mask, LinformerOutputKind.MeanPooled).to_type(float32).cpu().contiguous();   // (B, C)
        cpu.data<float>().CopyTo(output.AsSpan(0, (int)cpu.numel()));
        return output[0];
    }

    /// <summary>The rows as the library's own batches, read as Transform reads them (consecutive rows, last batch partial).</summary>
    private static List<SequenceBatch> Batches(MlNetModel m, InputBinding binding, IDataView data)
    {
        using var cursor = data.GetRowCursor(binding.Columns(data.Schema));
        var reader = new SequenceReader(binding, cursor, new TokenLayout(m.Tokens ? m.Vocabulary : 0, SpecialTokens: false), m.Tokens ? 0 : null);
        var batches = new List<SequenceBatch>();
        while (cursor.MoveNext())
        {
            if (batches.Count == 0 || batches[^1].Count == m.Batch) batches.Add(new SequenceBatch(binding, m.Batch));
            batches[^1].Add(reader);
        }
        return batches;
    }

    private static Comparison TransformOverhead(string id, MlNetModel m, int rowCount, int rounds)
    {
        var ml = NewContext();
        IDataView data = m.Tokens ? ml.Data.LoadFromEnumerable(TokenRows(m, rowCount, 11), Schema(m)) : ml.Data.LoadFromEnumerable(FloatRows(m, rowCount, 11), Schema(m));
        using var transformer = ml.Transforms.Linformer(Options(m, epochs: 0, label: false)).Fit(data);
        var network = transformer.Network;
        var binding = transformer.Binding;
        var batches = Batches(m, binding, data);
        var output = new float[m.Batch * transformer.OutputSize];

        using var dataScope = NewDisposeScope();
        var tensors = batches.Select(b => b.ToTensors(BenchDevice.Device)).ToList();

        double MlNetPass()
        {
            var view = transformer.Transform(data);
            var column = view.Schema[nameof(EncodedRow.Features)];
            using var cursor = view.GetRowCursor([column]);
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            double sum = 0;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                sum += buffer.GetValues()[0];
            }
            return sum;
        }

        double RawPass() => tensors.Sum(batch => (double)RawForward(network, batch, output));

        // The parts of the data path alone: IDataView rows read and checked into batches; batches into tensors.
        double ReadRows()
        {
            using var cursor = data.GetRowCursor(binding.Columns(data.Schema));
            var reader = new SequenceReader(binding, cursor, new TokenLayout(m.Tokens ? m.Vocabulary : 0, SpecialTokens: false), m.Tokens ? 0 : null);
            var batch = new SequenceBatch(binding, m.Batch);
            double sum = 0;
            while (cursor.MoveNext())
            {
                if (batch.Count == batch.Capacity) batch.Count = 0;
                batch.Add(reader);
                sum += batch.Mask[0] ? 1 : 0;
            }
            return sum;
        }

        double BuildTensors()
        {
            double sum = 0;
            foreach (var b in batches)
            {
                using var scope = NewDisposeScope();
                var (x, mask) = b.ToTensors(BenchDevice.Device);
                sum += x.shape[0] + (mask is null ? 0 : 1);
            }
            return sum;
        }

        // Warm-up: every part once, ML.NET and raw twice (first-call costs of oneDNN, the JIT, the allocator).
        var sides = new Func<double>[] { MlNetPass, RawPass, ReadRows, BuildTensors }.Select((pass, i) => Harness.Side(pass, i < 2 ? 2 : 1, rounds)).ToList();
        Harness.RunInterleaved(sides, null, null, rounds);
        return new Comparison(id, m, rowCount, sides[0].Timing, sides[1].Timing, [sides[2].Timing, sides[3].Timing]);
    }

    private static Comparison PredictLatency(string id, MlNetModel m, int warmups, int calls)
    {
        if (!m.Tokens) throw new ArgumentException("The PredictionEngine case uses token input.", nameof(m));
        var ml = NewContext();
        const int distinctRows = 32;
        var rows = TokenRows(m, distinctRows, 13);
        var schema = Schema(m);
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        using var transformer = ml.Transforms.Linformer(Options(m, epochs: 0, label: false)).Fit(data);
        var network = transformer.Network;
        using var engine = ml.Model.CreatePredictionEngine<TokenRow, EncodedRow>(transformer,
            new PredictionEngineOptions { OwnsTransformer = false, InputSchemaDefinition = schema });

        using var dataScope = NewDisposeScope();
        var single = Batches(m with { Batch = 1 }, transformer.Binding, data).Select(b => b.ToTensors(BenchDevice.Device)).ToList();
        var output = new float[transformer.OutputSize];

        int next = 0;
        double sum = 0;
        double EngineCall() => sum += engine.Predict(rows[next++ % distinctRows]).Features[0];
        double RawCall() => sum += RawForward(network, single[next++ % distinctRows], output);

        InterleavedCase[] sides = [Harness.Side(EngineCall, warmups, calls), Harness.Side(RawCall, warmups, calls)];
        Harness.RunInterleaved(sides, null, null, calls);
        return new Comparison(id, m, 1, sides[0].Timing, sides[1].Timing, []);
    }

    /// <summary>Records the time of every optimizer-step report, on the training thread (no synchronisation context).</summary>
    private sealed class StepClock : IProgress<LinformerTrainingProgress>
    {
        public List<long> Steps { get; } = [];
        public void Report(LinformerTrainingProgress value) { if (!value.IsEpochEnd) Steps.Add(Stopwatch.GetTimestamp()); }
    }

    private static Comparison FitThroughput(string id, MlNetModel m, int rowCount, int epochs, int rounds)
    {
        if (!m.Tokens) throw new ArgumentException("The Fit case uses token input.", nameof(m));
        var rows = TokenRows(m, rowCount, 17);
        var schema = Schema(m);
        var warmRows = rows.Take(Math.Min(rowCount, 2 * m.Batch)).ToList();

        // The network's settings as Fit builds them (same options, no training), for the raw loop.
        NetworkSpec spec;
        InputBinding binding;
        using (var probe = NewContext().Transforms.Linformer(Options(m, epochs: 0, label: true)).Fit(NewContext().Data.LoadFromEnumerable(warmRows, schema)))
            (spec, binding) = (probe.Spec, probe.Binding);

        // One whole run of each side (ms); the time between consecutive optimizer steps goes into steps.
        double FitOnce(List<TokenRow> data, List<double> steps)
        {
            var ml = NewContext();
            var view = ml.Data.LoadFromEnumerable(data, schema);
            var clock = new StepClock();
            var options = Options(m, epochs, label: true);
            options.Progress = clock;
            long start = Stopwatch.GetTimestamp();
            using (var model = ml.Transforms.Linformer(options).Fit(view)) { }
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            steps.AddRange(clock.Steps.Zip(clock.Steps.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a, b).TotalMilliseconds));
            return ms;
        }

        double RawOnce(List<TokenRow> data, List<double> steps)
        {
            using var scope = NewDisposeScope();
            manual_seed(1);
            using var network = new LinformerNetwork(spec);
            network.to(BenchDevice.Device);
            network.train();
            var batches = Batches(m, binding, NewContext().Data.LoadFromEnumerable(data, schema));
            var inputs = batches.Select(b => b.ToTensors(BenchDevice.Device)).ToList();
            var labels = batches.Select((b, i) => tensor(data.Skip(i * m.Batch).Take(b.Count).Select(r => r.Label ? 1L : 0L).ToArray(), int64)
                .to(BenchDevice.Device)).ToList();
            var parameters = network.parameters().ToList();
            BenchDevice.Synchronize();
            long start = Stopwatch.GetTimestamp();
            using var optimizer = optim.AdamW(parameters, lr: LinformerEstimator.Defaults.LearningRate, weight_decay: LinformerEstimator.Defaults.WeightDecay);
            for (int epoch = 0; epoch < epochs; epoch++)
                for (int i = 0; i < inputs.Count; i++)
                {
                    long stepStart = Stopwatch.GetTimestamp();
                    using var stepScope = NewDisposeScope();
                    var (x, mask) = inputs[i];
                    optimizer.zero_grad();
                    var logits = network.Head(network.forward(x, mask), mask);                                       // (B, 2)
                    var loss = nn.functional.cross_entropy(logits, labels[i]);
                    loss.backward();
                    nn.utils.clip_grad_norm_(parameters, LinformerEstimator.Defaults.GradientClipNorm);
                    optimizer.step();
                    BenchDevice.Synchronize();
                    if (epoch + i > 0) steps.Add(Stopwatch.GetElapsedTime(stepStart).TotalMilliseconds);   // like Fit's: the first step left out
                }
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        // Warm-up on a few batches: first-call costs of both paths. Then whole runs in turns.
        FitOnce(warmRows, []);
        RawOnce(warmRows, []);
        List<double> fitSteps = [], rawSteps = [];
        // Each side times itself (RawOnce leaves out building its network and tensors), in turns: Fit raw, raw Fit, …
        List<double> fitRuns = [], rawRuns = [];
        for (int round = 0; round < rounds; round++)
        {
            if (round % 2 == 0) fitRuns.Add(FitOnce(rows, fitSteps));
            rawRuns.Add(RawOnce(rows, rawSteps));
            if (round % 2 == 1) fitRuns.Add(FitOnce(rows, fitSteps));
        }
        return new Comparison(id, m, (double)rowCount * epochs, new Timing(fitRuns), new Timing(rawRuns),
            [new Timing(fitSteps.Count > 0 ? fitSteps : [double.NaN]), new Timing(rawSteps.Count > 0 ? rawSteps : [double.NaN])]);
    }

    /// <summary>The ratio of ML.NET throughput to the raw network's that the component aims for.</summary>
    public const double OverheadGoal = 0.9;

    private static string Verdict(double ratio) => ratio >= OverheadGoal ? "meets the goal" : $"**misses the goal by {F(OverheadGoal - ratio, 2)}**";

    private static string Ratios(Comparison c) => string.Join(", ", c.Ratios.Select(v => F(v, 2)));

    /// <summary>Transform throughput and its parts, PredictionEngine latency, Fit throughput.</summary>
    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        var transforms = Results.Where(r => r.Id.StartsWith(TransformPrefix, StringComparison.Ordinal)).ToList();
        if (transforms.Count > 0)
        {
            bool complete = CaseIds(run.Profile).Where(id => id.StartsWith(TransformPrefix, StringComparison.Ordinal)).All(run.Filter.Matches);
            yield return new("transform", Table(["model", "ML.NET rows/s", "raw rows/s", "ratio", "per-round ratios", "goal"],
                transforms.Select(x => new[] { x.Model.Describe, F(x.ARate, 1), F(x.BRate, 1), $"**{F(x.Ratio, 2)}**", Ratios(x), Verdict(x.Ratio) })), complete);
            // Median ms per pass, with shares of the ML.NET pass; rest = ML.NET − raw − read rows − build tensors.
            yield return new("transform-parts", Table(["model", "ML.NET pass", "raw network", "read rows", "build tensors", "rest"],
                transforms.Select(x =>
                {
                    double total = x.A.MedianMs, rest = total - x.B.MedianMs - x.Parts[0].MedianMs - x.Parts[1].MedianMs;
                    string Part(double ms) => $"{F(ms, 1)} ({Pct(ms / total)})";
                    return new[]
                    {
                        $"{x.Model.Name}, N = {x.Model.SequenceLength}", F(total, 1), Part(x.B.MedianMs), Part(x.Parts[0].MedianMs), Part(x.Parts[1].MedianMs), Part(rest),
                    };
                })), complete);
        }
        foreach (var p in Results.Where(r => r.Id.StartsWith(PredictPrefix, StringComparison.Ordinal)))
            yield return new("predict", Table(["", "median ms", "p95 ms", "min ms", "raw ÷ engine"],
            [
                ["`engine.Predict(row)`", F(p.A.MedianMs, 2), F(p.A.Percentile(0.95), 2), F(p.A.MinMs, 2), $"**{F(p.Ratio, 2)}** ({Verdict(p.Ratio)})"],
                ["raw network, batch of 1 (prepared tensors)", F(p.B.MedianMs, 2), F(p.B.Percentile(0.95), 2), F(p.B.MinMs, 2), ""],
            ]));
        foreach (var f in Results.Where(r => r.Id.StartsWith(FitPrefix, StringComparison.Ordinal)))
        {
            var (fitStep, rawStep) = (f.Parts[0], f.Parts[1]);
            yield return new("fit", Table(["", "whole run, median ms", "sequences/s", "per step, median ms", "per-step sequences/s", "Fit ÷ raw, whole run (rounds)", "Fit ÷ raw, per step"],
            [
                ["`Fit`", F(f.A.MedianMs, 0), F(f.ARate, 2), F(fitStep.MedianMs, 1), F(f.Model.Batch / (fitStep.MedianMs * 1e-3), 2),
                    $"**{F(f.Ratio, 2)}** ({Ratios(f)}; {Verdict(f.Ratio)})", $"**{F(rawStep.MedianMs / fitStep.MedianMs, 2)}**"],
                ["raw loop", F(f.B.MedianMs, 0), F(f.BRate, 2), F(rawStep.MedianMs, 1), F(f.Model.Batch / (rawStep.MedianMs * 1e-3), 2), "", ""],
            ]));
        }
    }
}
