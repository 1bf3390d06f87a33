using System.Diagnostics;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

// Shapes: B batch, N sequence length, I input channels (float input), C model width.

/// <summary>
/// <c>Transform</c> read by a cursor against the raw network on the same batches, with the parts of the data path
/// timed alone. Times are per pass over <see cref="Rows"/> rows; <see cref="PairedRatios"/> holds raw time ÷ ML.NET
/// time of each round (the two sides ran back to back in every round).
/// </summary>
internal sealed record TransformOverheadResult(MlNetModel Model, int Rows, Timing MlNet, Timing Raw, Timing ReadRows, Timing BuildTensors,
    IReadOnlyList<double> PairedRatios)
{
    public double MlNetRowsPerSecond => Rows / (MlNet.MedianMs * 1e-3);
    public double RawRowsPerSecond => Rows / (Raw.MedianMs * 1e-3);
    /// <summary>ML.NET throughput ÷ raw throughput: the median of the rounds' ratios.</summary>
    public double Ratio => Timing.Median(PairedRatios);
}

/// <summary>Single-row latency: one sample per call of <c>PredictionEngine.Predict</c> and of the raw network on a batch of one.</summary>
internal sealed record PredictLatencyResult(MlNetModel Model, Timing Engine, Timing Raw, IReadOnlyList<double> PairedRatios)
{
    /// <summary>Raw time ÷ engine time, median over pairs of neighbouring calls (1 = no overhead).</summary>
    public double Ratio => Timing.Median(PairedRatios);
}

/// <summary>
/// <c>Fit</c> against a raw AdamW loop on the same network and batches. <see cref="Fit"/> and <see cref="Raw"/> are
/// whole runs (ms); <see cref="FitStep"/> and <see cref="RawStep"/> are the time between consecutive optimizer steps
/// (ms, steady state: Fit's from its progress reports after every step).
/// </summary>
internal sealed record FitThroughputResult(MlNetModel Model, int Rows, int Epochs, Timing Fit, Timing Raw, Timing FitStep, Timing RawStep,
    IReadOnlyList<double> PairedRatios)
{
    public double Sequences => (double)Rows * Epochs;
    public double FitSequencesPerSecond => Sequences / (Fit.MedianMs * 1e-3);
    public double RawSequencesPerSecond => Sequences / (Raw.MedianMs * 1e-3);
    /// <summary>Fit throughput ÷ raw throughput: the median of the rounds' ratios.</summary>
    public double Ratio => Timing.Median(PairedRatios);
    public double StepRatio => RawStep.MedianMs / FitStep.MedianMs;
}

/// <summary>
/// The ML.NET sections: the overhead of <c>Transform</c> and <c>PredictionEngine</c> over the network they run, and
/// the throughput of <c>Fit</c> against a hand-written training loop. Each comparison runs both sides in the same
/// process, in turns (A B B A …), so that a slow phase of the shared machine falls on both alike.
/// </summary>
internal sealed partial class MlNetBenchmarks : IBenchmarkSection
{
    public sealed class TokenRow
    {
        public int[] Tokens { get; set; } = [];
        public bool Label { get; set; }
    }

    public sealed class FloatRow
    {
        public float[] Values { get; set; } = [];
        public bool[] Mask { get; set; } = [];
    }

    public sealed class EncodedRow
    {
        public float[] Features { get; set; } = [];
    }

    public List<TransformOverheadResult> TransformOverheads { get; } = [];
    public List<PredictLatencyResult> PredictLatencies { get; } = [];
    public List<FitThroughputResult> FitThroughputs { get; } = [];

    public IEnumerable<string> CaseIds(RunProfile profile) => profile.MlNet.CaseIds();

    public void Run(BenchmarkRun run)
    {
        var s = run.Profile.MlNet;
        void Case<T>(string id, List<T> results, Func<T> measure, Func<T, string> summary)
        {
            if (!run.Filter.Matches(id)) return;
            run.WaitForQuiet();
            var r = measure();
            results.Add(r);
            run.Log.WriteLine($"{id}: {summary(r)}");
        }
        foreach (var model in s.Transform)
            Case(MlNetSettings.TransformId(model), TransformOverheads, () => TransformOverhead(model, s.TransformRows, s.TransformRounds),
                r => $"ML.NET {r.MlNetRowsPerSecond:F1} rows/s, raw {r.RawRowsPerSecond:F1} rows/s, ratio {r.Ratio:F3}");
        Case(MlNetSettings.PredictId(s.Predict), PredictLatencies, () => PredictLatency(s.Predict, s.PredictWarmups, s.PredictCalls, s.PredictBlock),
            r => $"PredictionEngine median {r.Engine.MedianMs:F3} ms, raw {r.Raw.MedianMs:F3} ms, ratio {r.Ratio:F3}");
        Case(MlNetSettings.FitId(s.Fit), FitThroughputs, () => FitThroughput(s.Fit, s.FitRows, s.FitEpochs, s.FitRounds),
            r => $"Fit {r.FitSequencesPerSecond:F2} seq/s, raw loop {r.RawSequencesPerSecond:F2} seq/s, ratio {r.Ratio:F3}");
    }

    /// <summary>Token rows: ids in [1, V), a real length between N/2 and N, then padding id 0; label = parity of the first id.</summary>
    private static List<TokenRow> TokenRows(MlNetModel m, int count, int seed)
    {
        var random = new Random(seed);
        int n = m.SequenceLength;
        return Enumerable.Range(0, count).Select(_ =>
        {
            int real = n / 2 + random.Next(n - n / 2 + 1);
            var tokens = new int[n];
            for (int i = 0; i < real; i++) tokens[i] = 1 + random.Next(m.Vocabulary - 1);
            return new TokenRow { Tokens = tokens, Label = tokens[0] % 2 == 0 };
        }).ToList();
    }

    /// <summary>Float rows: N × I values in [−1, 1) for a real length between N/2 and N, zeros and mask false after it.</summary>
    private static List<FloatRow> FloatRows(MlNetModel m, int count, int seed)
    {
        var random = new Random(seed);
        int n = m.SequenceLength, ch = m.InputChannels;
        return Enumerable.Range(0, count).Select(_ =>
        {
            int real = n / 2 + random.Next(n - n / 2 + 1);
            var values = new float[n * ch];
            for (int i = 0; i < real * ch; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
            return new FloatRow { Values = values, Mask = Enumerable.Range(0, n).Select(p => p < real).ToArray() };
        }).ToList();
    }

    private static SchemaDefinition Schema(MlNetModel m)
    {
        var def = SchemaDefinition.Create(m.Tokens ? typeof(TokenRow) : typeof(FloatRow));
        if (m.Tokens) def[nameof(TokenRow.Tokens)].ColumnType = new VectorDataViewType(NumberDataViewType.Int32, m.SequenceLength);
        else
        {
            def[nameof(FloatRow.Values)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, m.SequenceLength * m.InputChannels);
            def[nameof(FloatRow.Mask)].ColumnType = new VectorDataViewType(BooleanDataViewType.Instance, m.SequenceLength);
        }
        return def;
    }

    /// <summary>A context on the benchmark's device (ML.NET's GPU settings), seeded.</summary>
    private static MLContext NewContext()
    {
        var ml = new MLContext(seed: 1);
        if (BenchDevice.IsCuda)
        {
            ml.GpuDeviceId = BenchDevice.Device.index < 0 ? 0 : BenchDevice.Device.index;
            ml.FallbackToCpu = false;
        }
        return ml;
    }

    private static LinformerEstimator.Options Options(MlNetModel m, int epochs, bool label) => new()
    {
        InputColumnName = m.Tokens ? nameof(TokenRow.Tokens) : nameof(FloatRow.Values),
        OutputColumnName = nameof(EncodedRow.Features),
        MaskColumnName = m.Tokens ? null : nameof(FloatRow.Mask),
        PaddingTokenId = m.Tokens ? 0 : null,
        LabelColumnName = label ? nameof(TokenRow.Label) : null,
        VocabularySize = m.Tokens ? m.Vocabulary : 0,
        SequenceLength = m.SequenceLength,
        Channels = m.Tokens ? 0 : m.InputChannels,
        ModelWidth = m.Width,
        ProjectedLength = m.ProjectedLength,
        Heads = m.Heads,
        Depth = m.Depth,
        FeedForwardSize = m.FeedForward,
        BatchSize = m.Batch,
        Epochs = epochs,
    };

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

    private static TransformOverheadResult TransformOverhead(MlNetModel m, int rowCount, int rounds)
    {
        var ml = NewContext();
        var tokens = m.Tokens ? TokenRows(m, rowCount, 11) : null;
        var floats = m.Tokens ? null : FloatRows(m, rowCount, 11);
        IDataView data = tokens is not null ? ml.Data.LoadFromEnumerable(tokens, Schema(m)) : ml.Data.LoadFromEnumerable(floats!, Schema(m));
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

        double RawPass()
        {
            using var noGrad = no_grad();
            double sum = 0;
            foreach (var (x, mask) in tensors)
            {
                using var scope = NewDisposeScope();
                var pooled = LinformerNetwork.Pool(network.forward(x, mask), mask, LinformerOutputKind.MeanPooled);   // (B, C)
                var cpu = pooled.to_type(float32).cpu().contiguous();
                cpu.data<float>().CopyTo(output.AsSpan(0, (int)cpu.numel()));
                sum += output[0];
            }
            return sum;
        }

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
            BenchDevice.Synchronize();
            return sum;
        }

        var sides = new (string Name, Func<double> Pass, List<double> Samples)[]
        {
            ("ML.NET", MlNetPass, []), ("raw", RawPass, []), ("read rows", ReadRows, []), ("build tensors", BuildTensors, []),
        };
        // Warm-up: every side once, and ML.NET and raw once more (first-call costs of oneDNN, the JIT, the allocator).
        foreach (var side in sides) side.Pass();
        MlNetPass();
        RawPass();
        for (int round = 0; round < rounds; round++)
            // A B B A: the order alternates so that a trend over the round falls on both sides alike.
            foreach (var side in round % 2 == 0 ? sides : sides.Reverse())
                side.Samples.Add(TimeMs(side.Pass));
        return new TransformOverheadResult(m, rowCount, new Timing(sides[0].Samples), new Timing(sides[1].Samples),
            new Timing(sides[2].Samples), new Timing(sides[3].Samples), sides[1].Samples.Zip(sides[0].Samples, (raw, mlNet) => raw / mlNet).ToList());
    }

    private static PredictLatencyResult PredictLatency(MlNetModel m, int warmups, int calls, int block)
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
        void EngineCall()
        {
            var encoded = engine.Predict(rows[next++ % distinctRows]);
            sum += encoded.Features[0];
        }
        void RawCall()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (x, mask) = single[next++ % distinctRows];
            var pooled = LinformerNetwork.Pool(network.forward(x, mask), mask, LinformerOutputKind.MeanPooled);   // (1, C)
            var cpu = pooled.to_type(float32).cpu().contiguous();
            cpu.data<float>().CopyTo(output);
            sum += output[0];
        }

        for (int i = 0; i < warmups; i++) { EngineCall(); RawCall(); }
        var engineSamples = new List<double>(calls);
        var rawSamples = new List<double>(calls);
        for (int done = 0, round = 0; done < calls; done += block, round++)
        {
            int count = Math.Min(block, calls - done);
            var sides = round % 2 == 0
                ? new[] { ((Action)EngineCall, engineSamples), (RawCall, rawSamples) }
                : new[] { ((Action)RawCall, rawSamples), (EngineCall, engineSamples) };
            foreach (var (call, samples) in sides)
                for (int i = 0; i < count; i++)
                    samples.Add(TimeMs(() => { call(); return 0; }));
        }
        GC.KeepAlive(sum);
        var pairs = engineSamples.Zip(rawSamples, (e, r) => r / e).ToList();
        return new PredictLatencyResult(m, new Timing(engineSamples), new Timing(rawSamples), pairs);
    }

    /// <summary>Records the time of every optimizer-step report, on the training thread (no synchronisation context).</summary>
    private sealed class StepClock : IProgress<LinformerTrainingProgress>
    {
        public List<long> Steps { get; } = [];
        public void Report(LinformerTrainingProgress value)
        {
            if (!value.IsEpochEnd) Steps.Add(Stopwatch.GetTimestamp());
        }
    }

    private static FitThroughputResult FitThroughput(MlNetModel m, int rowCount, int epochs, int rounds)
    {
        if (!m.Tokens) throw new ArgumentException("The Fit case uses token input.", nameof(m));
        var rows = TokenRows(m, rowCount, 17);
        var schema = Schema(m);
        var warmRows = rows.Take(Math.Min(rowCount, 2 * m.Batch)).ToList();

        // The network's settings as Fit builds them (same options, no training), for the raw loop.
        NetworkSpec spec;
        InputBinding binding;
        {
            var ml = NewContext();
            using var probe = ml.Transforms.Linformer(Options(m, epochs: 0, label: true)).Fit(ml.Data.LoadFromEnumerable(warmRows, schema));
            spec = probe.Spec;
            binding = probe.Binding;
        }

        (double Ms, List<double> StepMs) FitOnce(List<TokenRow> data)
        {
            var ml = NewContext();
            var view = ml.Data.LoadFromEnumerable(data, schema);
            var clock = new StepClock();
            var options = Options(m, epochs, label: true);
            options.Progress = clock;
            long start = Stopwatch.GetTimestamp();
            using (var model = ml.Transforms.Linformer(options).Fit(view)) { }
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            var steps = clock.Steps.Zip(clock.Steps.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a, b).TotalMilliseconds).ToList();
            return (ms, steps);
        }

        (double Ms, List<double> StepMs) RawOnce(List<TokenRow> data)
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
            var steps = new List<double>();
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
                    steps.Add(Stopwatch.GetElapsedTime(stepStart).TotalMilliseconds);
                }
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            return (ms, steps);
        }

        // Warm-up on a few batches: first-call costs of both paths.
        FitOnce(warmRows);
        RawOnce(warmRows);
        var fitMs = new List<double>();
        var rawMs = new List<double>();
        var fitSteps = new List<double>();
        var rawSteps = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            (double Ms, List<double> StepMs) f, r;
            if (round % 2 == 0) { f = FitOnce(rows); r = RawOnce(rows); }
            else { r = RawOnce(rows); f = FitOnce(rows); }
            fitMs.Add(f.Ms);
            rawMs.Add(r.Ms);
            fitSteps.AddRange(f.StepMs);
            rawSteps.AddRange(r.StepMs.Skip(1));   // comparable to Fit's: time between consecutive steps, first one left out
        }
        return new FitThroughputResult(m, rowCount, epochs, new Timing(fitMs), new Timing(rawMs),
            new Timing(fitSteps.Count > 0 ? fitSteps : [double.NaN]), new Timing(rawSteps.Count > 0 ? rawSteps : [double.NaN]),
            rawMs.Zip(fitMs, (raw, fit) => raw / fit).ToList());
    }

    private static double TimeMs(Func<double> pass)
    {
        long start = Stopwatch.GetTimestamp();
        GC.KeepAlive(pass());
        BenchDevice.Synchronize();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }
}
