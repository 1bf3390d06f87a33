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
/// The ML.NET sections: <c>Transform</c> against the network it runs (and against the same model scored by ONNX Runtime
/// through <c>ToOnnxRuntime()</c>), <c>PredictionEngine</c> against a raw single-row forward, and <c>Fit</c> against a
/// hand-written training loop. The sides of a comparison take turns in the same process (<see cref="Harness.Side"/>),
/// so that a slow phase of the shared machine falls on all alike.
/// </summary>
internal sealed class MlNetBenchmarks : IBenchmarkSection
{
    // The rows the cases read and write; vector sizes are set per model by Schema.
    public sealed class TokenRow { public int[] Tokens { get; set; } = []; public bool Label { get; set; } }
    public sealed class FloatRow { public float[] Values { get; set; } = []; public bool[] Mask { get; set; } = []; }
    public sealed class EncodedRow { public float[] Features { get; set; } = []; }

    // The sides of the comparisons.
    public const string Transform = "`Transform`", Raw = "raw network",
        OrtFp32 = "ONNX Runtime fp32, `Transform`", OrtInt8 = "ONNX Runtime int8, `Transform`",
        Engine = "`engine.Predict(row)`", RawSingle = "raw network, batch of 1 (prepared tensors)",
        Fit = "`Fit`", RawLoop = "raw loop", FitStep = "`Fit`, per step", RawStep = "raw loop, per step";

    private const string TransformPrefix = "overhead/transform/", PredictPrefix = "overhead/predict/", FitPrefix = "fit/";

    public List<Comparison> Results { get; } = [];

    /// <summary>The cases, as ids (see CaseFilter) with what measures them.</summary>
    private static IEnumerable<(string Id, Func<string, Comparison> Measure)> Cases(MlNetSettings s)
    {
        foreach (var m in s.Transform)
            yield return ($"{TransformPrefix}{m.Name}-n{m.SequenceLength}-b{m.Batch}", id => TransformThroughput(id, m, s.TransformRows, s.TransformRounds));
        yield return ($"{PredictPrefix}{s.Predict.Name}-n{s.Predict.SequenceLength}", id => PredictLatency(id, s.Predict, s.PredictWarmups, s.PredictCalls));
        yield return ($"{FitPrefix}{s.Fit.Name}-n{s.Fit.SequenceLength}-b{s.Fit.Batch}", id => FitThroughput(id, s.Fit, s.FitRows, s.FitEpochs, s.FitRounds));
    }

    public IEnumerable<string> CaseIds(RunProfile profile) => Cases(profile.MlNet).Select(c => c.Id);

    public void Run(BenchmarkRun run)
    {
        foreach (var (id, measure) in Cases(run.Profile.MlNet).Where(c => run.Filter.Matches(c.Id)))
        {
            string before = MachineInfo.LoadAverage();
            var r = measure(id) with { Load = (before, MachineInfo.LoadAverage()) };
            Results.Add(r);
            foreach (var side in r.Sides)
                run.Log.WriteLine($"{id}: {side.Name} median {side.Timing.MedianMs:F3} ms ({side.Timing.Repetitions} samples), max |diff| {side.MaxAbsDifference:E1}");
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

    /// <summary>The rows of <paramref name="m"/> as an in-memory data view.</summary>
    internal static IDataView Data(MLContext ml, MlNetModel m, int count, int seed)
        => m.Tokens ? ml.Data.LoadFromEnumerable(TokenRows(m, count, seed), Schema(m)) : ml.Data.LoadFromEnumerable(FloatRows(m, count, seed), Schema(m));

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

    /// <summary>
    /// A full pass of <paramref name="model"/>'s <c>Transform</c> over <paramref name="data"/>, read by a cursor that asks
    /// for the output column and calls its getter for every row, as a downstream trainer does; each row goes to <paramref name="consume"/>.
    /// </summary>
    internal static double TransformPass(ITransformer model, IDataView data, Func<ReadOnlySpan<float>, double> consume)
    {
        var view = model.Transform(data);
        var column = view.Schema[nameof(EncodedRow.Features)];
        using var cursor = view.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> buffer = default;
        double sum = 0;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            sum += consume(buffer.GetValues());
        }
        return sum;
    }

    /// <summary>The raw network on one batch: its mean-pooled (B, C) output copied into <paramref name="output"/>.</summary>
    private static void RawForward(LinformerNetwork network, (Tensor X, Tensor? Mask) batch, float[] output)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (x, mask) = batch;
        var cpu = LinformerNetwork.Pool(network.forward(x, mask), mask, LinformerOutputKind.MeanPooled).to_type(float32).cpu().contiguous();   // (B, C)
        cpu.data<float>().CopyTo(output.AsSpan(0, (int)cpu.numel()));
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

    /// <summary>
    /// Rows per second of one model's encoding, each side a full pass over the same rows with every row's features
    /// copied out: <c>Transform</c>; the raw network on tensors built beforehand; and the same model scored by ONNX
    /// Runtime through <c>ToOnnxRuntime()</c>, from the float32 and from the int8 export. Each side's features are
    /// compared with <c>Transform</c>'s.
    /// </summary>
    private static Comparison TransformThroughput(string id, MlNetModel m, int rowCount, int rounds)
    {
        var ml = NewContext();
        var data = Data(ml, m, rowCount, 11);
        using var transformer = ml.Transforms.Linformer(Options(m, epochs: 0, label: false)).Fit(data);
        var (network, binding) = (transformer.Network, transformer.Binding);
        int width = transformer.OutputSize;
        var batches = Batches(m, binding, data);
        var output = new float[m.Batch * width];
        using var dataScope = NewDisposeScope();
        var tensors = batches.Select(b => b.ToTensors(BenchDevice.Device)).ToList();

        // Every side's features of every row, in order, while collecting (once per side, after the timed rounds).
        List<float>? collected = null;
        double Consume(ReadOnlySpan<float> features)
        {
            collected?.AddRange(features);
            return features[0];
        }
        double RawPass()
        {
            double sum = 0;
            for (int b = 0; b < tensors.Count; b++)
            {
                RawForward(network, tensors[b], output);
                for (int r = 0; r < batches[b].Count; r++) sum += Consume(output.AsSpan(r * width, width));
            }
            return sum;
        }
        using var ortFp32 = transformer.ToOnnxRuntime();
        var int8Path = Path.Combine(Path.GetTempPath(), $"linformer-benchmark-{Guid.NewGuid():N}.onnx");
        LinformerOnnxTransformer ortInt8;
        try
        {
            using (var file = File.Create(int8Path)) transformer.ExportToOnnx(file, LinformerOnnxQuantization.Int8);
            ortInt8 = transformer.ToOnnxRuntime(int8Path);
        }
        finally { File.Delete(int8Path); }
        using var ortInt8Owner = ortInt8;
        var sides = new List<(string Name, Func<double> Pass)>
        {
            (Transform, () => TransformPass(transformer, data, Consume)), (Raw, RawPass),
            (OrtFp32, () => TransformPass(ortFp32, data, Consume)), (OrtInt8, () => TransformPass(ortInt8, data, Consume)),
        };
        // Warm-up: two passes of each side (first-call costs of oneDNN, ONNX Runtime's kernels, the JIT, the allocator).
        var cases = sides.Select(s => Harness.Side(s.Pass, 2, rounds)).ToList();
        Harness.RunInterleaved(cases, null, null, rounds);
        float[] Features(Func<double> pass)
        {
            collected = [];
            pass();
            var features = collected.ToArray();
            collected = null;
            return features;
        }
        var reference = Features(sides[0].Pass);
        return new Comparison(id, m, m.SequenceLength, rowCount, sides.Select((s, i) =>
        {
            var (max, relative) = Comparison.Difference(reference, Features(s.Pass));
            return new SideResult(s.Name, cases[i].Timing, max, relative);
        }).ToList());
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
        double EngineCall() => engine.Predict(rows[next++ % distinctRows]).Features[0];
        double RawCall()
        {
            RawForward(network, single[next++ % distinctRows], output);
            return output[0];
        }

        InterleavedCase[] sides = [Harness.Side(EngineCall, warmups, calls), Harness.Side(RawCall, warmups, calls)];
        Harness.RunInterleaved(sides, null, null, calls);
        return new Comparison(id, m, m.SequenceLength, 1, [new(Engine, sides[0].Timing), new(RawSingle, sides[1].Timing)]);
    }

    /// <summary>Records the time of every optimizer-step report, on the training thread (no synchronisation context).</summary>
    private sealed class StepClock : IProgress<LinformerTrainingProgress>
    {
        public List<long> Steps { get; } = [];
        public void Report(LinformerTrainingProgress value) { if (!value.IsEpochEnd) Steps.Add(Stopwatch.GetTimestamp()); }
    }

    /// <summary>
    /// One whole <c>Fit</c> of <paramref name="m"/> with a classification head on <paramref name="data"/> (ms); the time
    /// between consecutive optimizer steps goes into <paramref name="steps"/>. <paramref name="configure"/> changes the options.
    /// </summary>
    internal static double FitOnce(MlNetModel m, List<TokenRow> data, int epochs, List<double> steps, Action<LinformerEstimator.Options>? configure = null)
    {
        var ml = NewContext();
        var view = ml.Data.LoadFromEnumerable(data, Schema(m));
        var clock = new StepClock();
        var options = Options(m, epochs, label: true);
        options.Progress = clock;
        configure?.Invoke(options);
        long start = Stopwatch.GetTimestamp();
        using (var model = ml.Transforms.Linformer(options).Fit(view)) { }
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        steps.AddRange(clock.Steps.Zip(clock.Steps.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a, b).TotalMilliseconds));
        return ms;
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

        // Warm-up on a few batches: first-call costs of both paths. Then whole runs in turns (Fit raw, raw Fit, …); each
        // side times itself (RawOnce leaves out building its network and tensors).
        FitOnce(m, warmRows, epochs, []);
        RawOnce(warmRows, []);
        List<double> fitSteps = [], rawSteps = [], fitRuns = [], rawRuns = [];
        for (int round = 0; round < rounds; round++)
        {
            if (round % 2 == 0) fitRuns.Add(FitOnce(m, rows, epochs, fitSteps));
            rawRuns.Add(RawOnce(rows, rawSteps));
            if (round % 2 == 1) fitRuns.Add(FitOnce(m, rows, epochs, fitSteps));
        }
        static Timing Steps(List<double> steps) => new(steps.Count > 0 ? steps : [double.NaN]);
        return new Comparison(id, m, m.SequenceLength, (double)rowCount * epochs,
            [new(Fit, new Timing(fitRuns)), new(RawLoop, new Timing(rawRuns)), new(FitStep, Steps(fitSteps)), new(RawStep, Steps(rawSteps))]);
    }

    /// <summary>The ratio of ML.NET throughput to the raw network's that the component aims for.</summary>
    public const double OverheadGoal = 0.9;

    private static string Verdict(double ratio) => ratio >= OverheadGoal ? "meets the goal" : $"**misses the goal by {F(OverheadGoal - ratio, 2)}**";

    private static string List(IEnumerable<double> ratios) => string.Join(", ", ratios.Select(v => F(v, 2)));

    /// <summary>Transform throughput, the ONNX Runtime transforms, PredictionEngine latency, Fit throughput.</summary>
    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        var transforms = Results.Where(r => r.Id.StartsWith(TransformPrefix, StringComparison.Ordinal)).ToList();
        if (transforms.Count > 0)
        {
            bool complete = CaseIds(run.Profile).Where(id => id.StartsWith(TransformPrefix, StringComparison.Ordinal)).All(run.Filter.Matches);
            yield return new("transform", Table(["model", "ML.NET rows/s", "raw rows/s", "ratio", "per-round ratios", "goal"],
                transforms.Select(x => new[]
                {
                    x.Model!.Describe, F(x.Rate(Transform), 1), F(x.Rate(Raw), 1), $"**{F(x.Speed(Transform, Raw), 2)}**",
                    List(x.Ratios(Transform, Raw)), Verdict(x.Speed(Transform, Raw)),
                })), complete);
            yield return new("onnx-transform", string.Join("\n", transforms.Select(x =>
                $"**{x.Model!.Describe}**; {x.Items} rows per pass; median of {x[Transform].Timing.Repetitions} rounds; load average (1/5/15 min) " +
                $"{x.Load.Before} at the start, {x.Load.After} at the end.\n\n" +
                Table(["", "rows/s", "speed-up over `Transform`", "per-round speed-ups", "max abs / rel. diff"], x.Sides.Select(s => s.Name == Transform
                    ? new[] { s.Name, F(x.Rate(s.Name), 1), "", "", "" }
                    : [s.Name, F(x.Rate(s.Name), 1), $"**{F(x.Speed(s.Name, Transform), 2)}×**", List(x.Ratios(s.Name, Transform)),
                        $"{G3(s.MaxAbsDifference)} / {G3(s.RelativeDifference)}"])))), complete);
        }
        foreach (var p in Results.Where(r => r.Id.StartsWith(PredictPrefix, StringComparison.Ordinal)))
        {
            double ratio = p.Speed(Engine, RawSingle);
            yield return new("predict", Table(["", "median ms", "p95 ms", "min ms", "raw ÷ engine"], p.Sides.Select(s => new[]
            {
                s.Name, F(s.Timing.MedianMs, 2), F(s.Timing.Percentile(0.95), 2), F(s.Timing.MinMs, 2), s.Name == Engine ? $"**{F(ratio, 2)}** ({Verdict(ratio)})" : "",
            })));
        }
        foreach (var f in Results.Where(r => r.Id.StartsWith(FitPrefix, StringComparison.Ordinal)))
        {
            double ratio = f.Speed(Fit, RawLoop);
            string[] Row(string side, string step, string ratios, string perStep) =>
            [
                side == Fit ? Fit : RawLoop, F(f[side].Timing.MedianMs, 0), F(f.Rate(side), 2), F(f[step].Timing.MedianMs, 1),
                F(f.Model!.Batch / (f[step].Timing.MedianMs * 1e-3), 2), ratios, perStep,
            ];
            yield return new("fit", Table(["", "whole run, median ms", "sequences/s", "per step, median ms", "per-step sequences/s", "Fit ÷ raw, whole run (rounds)", "Fit ÷ raw, per step"],
            [
                Row(Fit, FitStep, $"**{F(ratio, 2)}** ({List(f.Ratios(Fit, RawLoop))}; {Verdict(ratio)})", $"**{F(f[RawStep].Timing.MedianMs / f[FitStep].Timing.MedianMs, 2)}**"),
                Row(RawLoop, RawStep, "", ""),
            ]));
        }
    }
}
