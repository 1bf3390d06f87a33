using System.Diagnostics;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using static Linformer.MLNet.Benchmarks.Markdown;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

// Shapes: B batch, N sequence length, C model width.

/// <summary>One engine of an ONNX comparison: its timed samples (one per round) and how far its output is from TorchSharp fp32's.</summary>
internal sealed record EngineResult(string Engine, Timing Timing, double MaxAbsDifference, double RelativeDifference);

/// <summary>One ONNX case: the engines measured in the same rounds; <see cref="Items"/> is the rows one sample processes.</summary>
internal sealed record OnnxCase(string Id, int SequenceLength, MlNetModel? Model, double Items, IReadOnlyList<EngineResult> Engines)
{
    /// <summary>The load averages (1/5/15 min) before and after the case: how busy the machine was.</summary>
    public (string Before, string After) Load { get; init; }

    public EngineResult? Find(string engine) => Engines.FirstOrDefault(e => e.Engine == engine);

    /// <summary>The speed of <paramref name="engine"/> over <paramref name="baseline"/> in each round (baseline ms ÷ engine ms).</summary>
    public IReadOnlyList<double> Ratios(string engine, string baseline)
        => Find(baseline)!.Timing.SamplesMs.Zip(Find(engine)!.Timing.SamplesMs, (b, e) => b / e).ToList();

    /// <summary>The median of the per-round speed ratios; NaN when either engine was not measured.</summary>
    public double Speed(string engine, string baseline) => Find(engine) is null || Find(baseline) is null ? double.NaN : Timing.Median(Ratios(engine, baseline));
}

/// <summary>
/// TorchSharp against ONNX Runtime on the graph <see cref="LinformerTransformer.ExportToOnnx(Stream)"/> writes
/// (docs/benchmarks.md, section ONNX Runtime): one Linformer layer at every N of the profile, and the QuickStart
/// model's <c>Transform</c> rows/s. The engines of a case take turns, in reverse order every other round, so that a slow
/// phase of the shared machine falls on all alike; the speed ratios are medians of per-round ratios. ONNX Runtime gets
/// every graph optimisation and as many intra-op threads as libtorch uses.
/// </summary>
internal sealed class OnnxBenchmarks : IBenchmarkSection
{
    public const string TorchSharp = "TorchSharp fp32", TorchSharpBf16 = "TorchSharp bf16", OrtFp32 = "ONNX Runtime fp32", OrtInt8 = "ONNX Runtime int8";
    public const string TransformTorchSharp = "TorchSharp fp32, `Transform`", TransformByHand = "TorchSharp fp32, batches by hand",
        TransformBf16 = "TorchSharp bf16, `Transform`";
    private const string LayerPrefix = "onnx/layer/", TransformPrefix = "onnx/transform/";

    /// <summary>The exports ONNX Runtime runs: the engine's name and how the graph is written.</summary>
    private static readonly (string Engine, Action<LinformerTransformer, Stream> Export)[] Exports =
    [
        (OrtFp32, (t, s) => t.ExportToOnnx(s)),
        (OrtInt8, (t, s) => t.ExportToOnnx(s, LinformerOnnxQuantization.Int8)),
    ];

    /// <summary>The README's QuickStart model (Examples/QuickStart): GPT-2 token ids, N = 512, width 64, k = 64, 4 heads, 1 layer, FF 128, batch 16.</summary>
    private static readonly MlNetModel QuickStart = new("tokens", 512, 50257, 0, 64, 64, 4, 1, 128, 16);

    private sealed class ValuesRow { public float[] Values { get; set; } = []; }
    private sealed class TokenRow { public int[] Tokens { get; set; } = []; }

    public List<OnnxCase> Results { get; } = [];

    private static MlNetModel TransformModel(RunProfile profile)
        => profile == RunProfile.Smoke ? profile.MlNet.Transform.First(m => m.Tokens) : QuickStart;

    private static string TransformId(MlNetModel m) => $"{TransformPrefix}quickstart-n{m.SequenceLength}-b{m.Batch}";

    public IEnumerable<string> CaseIds(RunProfile profile)
        => profile.SequenceLengths.Select(n => $"{LayerPrefix}{n}").Append(TransformId(TransformModel(profile)));

    /// <summary>Whether bf16 is measured: only where the CPU has it natively; emulated bf16 is slower than fp32 and the library would not use it.</summary>
    private static bool MeasureBf16 => BFloat16Support.CpuHasNative;

    public void Run(BenchmarkRun run)
    {
        foreach (int n in run.Profile.SequenceLengths.Where(n => run.Filter.Matches($"{LayerPrefix}{n}")))
            Report(run, MachineInfo.LoadAverage(), Layer(n, run));
        var model = TransformModel(run.Profile);
        if (run.Filter.Matches(TransformId(model))) Report(run, MachineInfo.LoadAverage(), Transform(model, run));
    }

    private void Report(BenchmarkRun run, string loadBefore, OnnxCase c)
    {
        c = c with { Load = (loadBefore, MachineInfo.LoadAverage()) };
        Results.Add(c);
        foreach (var e in c.Engines)
            run.Log.WriteLine($"{c.Id}: {e.Engine} median {e.Timing.MedianMs:F2} ms ({e.Timing.Repetitions} rounds), " +
                              $"max |diff| {e.MaxAbsDifference:E1}, rel. {e.RelativeDifference:E1}");
    }

    private static SessionOptions Options(int threads) => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

    private static InferenceSession Session(LinformerTransformer transformer, Action<LinformerTransformer, Stream> export)
    {
        using var stream = new MemoryStream();
        export(transformer, stream);
        return new InferenceSession(stream.ToArray(), Options(get_num_threads()));
    }

    /// <summary>
    /// Runs the engines in turns (<see cref="Harness.RunInterleaved"/>), one timed call of each per round, so that sample
    /// i of every engine comes from round i. One untimed call of each comes first: the first of the policy's warm-ups, and
    /// the time that fixes the rounds (as many as the policy's budget allows the slowest engine). Waiting for free cores
    /// happens only between rounds, so the engines of a round meet the same machine.
    /// </summary>
    private static Timing[] InTurns(IReadOnlyList<(Action Call, Action? Before)> engines, RepetitionPolicy policy, BenchmarkRun run)
    {
        double slowestMs = 0;
        foreach (var (call, before) in engines)
        {
            before?.Invoke();
            long start = Stopwatch.GetTimestamp();
            call();
            slowestMs = Math.Max(slowestMs, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        int rounds = policy.RepetitionsFor(slowestMs);
        var cases = engines.Select(e => Harness.Side(() => { e.Call(); return 0; }, Math.Max(0, policy.Warmups - 1), rounds, e.Before)).ToList();
        var sinceCheck = Stopwatch.StartNew();
        int turns = 0;
        Harness.RunInterleaved(cases, null, () =>
        {
            // Before the first engine of a round only, and every few seconds (checking costs half a second).
            if (turns++ % cases.Count != 0 || sinceCheck.Elapsed.TotalSeconds < 5) return;
            run.WaitForQuiet();
            sinceCheck.Restart();
        }, rounds);
        return cases.Select(c => c.Timing).ToArray();
    }

    private static (double MaxAbs, double Relative) Difference(float[] reference, float[] actual)
    {
        if (reference.Length != actual.Length) throw new InvalidOperationException($"Outputs differ in length: {reference.Length} and {actual.Length}.");
        double max = 0, diff = 0, norm = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = actual[i] - (double)reference[i];
            max = Math.Max(max, Math.Abs(d));
            diff += d * d;
            norm += reference[i] * (double)reference[i];
        }
        return double.IsFinite(max) ? (max, Math.Sqrt(diff / Math.Max(norm, double.Epsilon))) : throw new InvalidOperationException("An output is not finite.");
    }

    /// <summary>
    /// One Linformer layer, the layer of the layer benchmark (profile width, heads, FF, the first k, layerwise, post-norm,
    /// GELU, batch): a float-input transformer whose input channels equal the width (so no input map), its whole
    /// (B, N, C) output as the graph's <c>features</c>. TorchSharp runs the network's forward without a mask, as
    /// <c>Transform</c> does when nothing is padded; the graph always takes one (all true).
    /// </summary>
    private static OnnxCase Layer(int n, BenchmarkRun run)
    {
        var p = run.Profile;
        var random = new Random(2);
        var rows = Enumerable.Range(0, p.Batch).Select(_ => new ValuesRow
        {
            Values = Enumerable.Range(0, n * p.Channels).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(),
        }).ToList();
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(ValuesRow));
        schema[nameof(ValuesRow.Values)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, n * p.Channels);
        using var transformer = ml.Transforms.Linformer(new LinformerEstimator.Options
        {
            InputColumnName = nameof(ValuesRow.Values), SequenceLength = n, Channels = p.Channels, ModelWidth = p.Channels, Heads = p.Heads,
            FeedForwardSize = p.FeedForward, ProjectedLength = Math.Min(p.ProjectedLengths[0], n), Sharing = ParameterSharing.Layerwise, Depth = 1,
            Dropout = 0, FeedForwardDropout = 0, Activation = Activation.Gelu, NormPlacement = NormPlacement.PostNorm,
            OutputKind = LinformerOutputKind.Sequence, BatchSize = p.Batch, Epochs = 0,
        }).Fit(ml.Data.LoadFromEnumerable(rows, schema));
        var network = transformer.Network;

        float[] values = rows.SelectMany(r => r.Values).ToArray();
        int outputSize = p.Batch * n * p.Channels;
        using var dataScope = NewDisposeScope();
        var x = tensor(values, new long[] { p.Batch, n, p.Channels });   // (B, N, C)

        float[] TorchOutput()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return network.forward(x, null).contiguous().data<float>().ToArray();   // (B, N, C)
        }

        void TorchForward()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            network.forward(x, null);
        }

        var engines = new List<(string Name, Action Call, Action? Before, Func<float[]> Output)>();
        Action? toFloat32 = MeasureBf16 ? () => transformer.Precision = LinformerPrecision.Float32 : null;
        engines.Add((TorchSharp, TorchForward, toFloat32, TorchOutput));

        var owned = new List<IDisposable>();   // sessions, run options, ONNX Runtime values
        try
        {
            var mask = Enumerable.Repeat(true, p.Batch * n).ToArray();
            var input = OrtValue.CreateTensorValueFromMemory(values, new long[] { p.Batch, n, p.Channels });
            var maskValue = OrtValue.CreateTensorValueFromMemory(mask, new long[] { p.Batch, n });
            owned.AddRange([input, maskValue]);
            string[] inputNames = ["input", "mask"], outputNames = ["features"];
            foreach (var (engine, export) in Exports)
            {
                var session = Session(transformer, export);
                var output = new float[outputSize];
                var outputValue = OrtValue.CreateTensorValueFromMemory(output, new long[] { p.Batch, (long)n * p.Channels });
                var runOptions = new RunOptions();
                owned.AddRange([session, outputValue, runOptions]);
                void RunSession() => session.Run(runOptions, inputNames, [input, maskValue], outputNames, [outputValue]);
                engines.Add((engine, RunSession, null, () =>
                {
                    RunSession();
                    return (float[])output.Clone();
                }));
            }
            if (MeasureBf16)
                engines.Add((TorchSharpBf16, TorchForward, () => transformer.Precision = LinformerPrecision.BFloat16, () =>
                {
                    transformer.Precision = LinformerPrecision.BFloat16;
                    try { return TorchOutput(); }
                    finally { transformer.Precision = LinformerPrecision.Float32; }
                }));

            run.WaitForQuiet();
            var timings = InTurns(engines.Select(e => (e.Call, e.Before)).ToList(), p.Layer, run);
            toFloat32?.Invoke();
            var reference = TorchOutput();
            var results = engines.Select((e, i) =>
            {
                var (max, relative) = Difference(reference, e.Output());
                return new EngineResult(e.Name, timings[i], max, relative);
            }).ToList();
            return new OnnxCase($"{LayerPrefix}{n}", n, null, p.Batch, results);
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>
    /// The QuickStart model's encoding of token rows (a real length between N/2 and N, padding id 0; untrained weights:
    /// speed does not depend on them): <c>Transform</c> read by a cursor that asks for the output column, as a downstream
    /// trainer does; and the same rows read by the library's own row reader into batches of the model's size, each run
    /// by TorchSharp's network (the raw loop of the ML.NET overhead section) or by an ONNX Runtime session, every
    /// row's features copied out.
    /// </summary>
    private static OnnxCase Transform(MlNetModel m, BenchmarkRun run)
    {
        var settings = run.Profile.MlNet;
        int n = m.SequenceLength, rowCount = settings.TransformRows;
        var random = new Random(11);
        var rows = Enumerable.Range(0, rowCount).Select(_ =>
        {
            int real = n / 2 + random.Next(n - n / 2 + 1);
            var tokens = new int[n];
            for (int i = 0; i < real; i++) tokens[i] = 1 + random.Next(m.Vocabulary - 1);
            return new TokenRow { Tokens = tokens };
        }).ToList();
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(TokenRow));
        schema[nameof(TokenRow.Tokens)].ColumnType = new VectorDataViewType(NumberDataViewType.Int32, n);
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        using var transformer = ml.Transforms.Linformer(new LinformerEstimator.Options
        {
            InputColumnName = nameof(TokenRow.Tokens), OutputColumnName = "Features", PaddingTokenId = 0, VocabularySize = m.Vocabulary, SequenceLength = n,
            ModelWidth = m.Width, ProjectedLength = m.ProjectedLength, Heads = m.Heads, Depth = m.Depth, FeedForwardSize = m.FeedForward,
            BatchSize = m.Batch, Epochs = 0,
        }).Fit(data);
        var network = transformer.Network;
        var binding = transformer.Binding;
        var layout = TokenLayout.Of(network.Spec);
        int width = transformer.OutputSize;
        var row = new float[width];

        // Every engine's features of every row, in order, written by the pass that last ran with collect on.
        List<float>? collected = null;
        double Consume(ReadOnlySpan<float> features)
        {
            features.CopyTo(row);
            collected?.AddRange(row);
            return row[0];
        }

        double TransformPass()
        {
            var view = transformer.Transform(data);
            var column = view.Schema["Features"];
            using var cursor = view.GetRowCursor([column]);
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            double sum = 0;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                sum += Consume(buffer.GetValues());
            }
            return sum;
        }

        // encode writes the batch's (B, C) features into its second argument.
        double ByHand(Action<SequenceBatch, float[]> encode)
        {
            using var cursor = data.GetRowCursor(binding.Columns(data.Schema));
            var reader = new SequenceReader(binding, cursor, layout, 0);
            var batch = new SequenceBatch(binding, m.Batch);
            var output = new float[m.Batch * width];
            double sum = 0;
            void Flush()
            {
                encode(batch, output);   // (B, C)
                for (int r = 0; r < batch.Count; r++) sum += Consume(output.AsSpan(r * width, width));
                batch.Count = 0;
            }
            while (cursor.MoveNext())
            {
                batch.Add(reader);
                if (batch.Count == batch.Capacity) Flush();
            }
            if (batch.Count > 0) Flush();
            return sum;
        }

        void TorchBatch(SequenceBatch batch, float[] output)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (x, mask) = batch.ToTensors(CPU);
            var pooled = LinformerNetwork.Pool(network.forward(x, mask), mask, LinformerOutputKind.MeanPooled).contiguous();   // (B, C)
            pooled.data<float>().CopyTo(output.AsSpan(0, (int)pooled.numel()));
        }

        var engines = new List<(string Name, Func<double> Pass, Action? Before)>();
        Action? toFloat32 = MeasureBf16 ? () => transformer.Precision = LinformerPrecision.Float32 : null;
        engines.Add((TransformTorchSharp, TransformPass, toFloat32));
        engines.Add((TransformByHand, () => ByHand(TorchBatch), toFloat32));
        var owned = new List<IDisposable>();   // sessions and run options
        try
        {
            string[] inputNames = ["input", "mask"];
            foreach (var (engine, export) in Exports)
            {
                var session = Session(transformer, export);
                var runOptions = new RunOptions();
                owned.AddRange([session, runOptions]);
                void OrtBatch(SequenceBatch batch, float[] output)
                {
                    var shape = new long[] { batch.Count, n };
                    using var ids = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.Ids.AsMemory(0, batch.Count * n), shape);
                    using var mask = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.Mask.AsMemory(0, batch.Count * n), shape);
                    using var results = session.Run(runOptions, inputNames, [ids, mask], ["features"]);
                    results.First().GetTensorDataAsSpan<float>().CopyTo(output);
                }
                engines.Add((engine, () => ByHand(OrtBatch), null));
            }
            if (MeasureBf16) engines.Add((TransformBf16, TransformPass, () => transformer.Precision = LinformerPrecision.BFloat16));

            // Warm-ups as in the ML.NET overhead section: two passes of each engine (first-call costs of oneDNN, ONNX
            // Runtime's kernels, the JIT, the allocator); then the rounds.
            var policy = new RepetitionPolicy(Warmups: 2, MinRepetitions: settings.TransformRounds, MaxRepetitions: settings.TransformRounds, SecondsPerCase: 0);
            run.WaitForQuiet();
            var timings = InTurns(engines.Select(e => ((Action)(() => GC.KeepAlive(e.Pass())), e.Before)).ToList(), policy, run);

            float[] Features((string Name, Func<double> Pass, Action? Before) e)
            {
                e.Before?.Invoke();
                collected = [];
                e.Pass();
                var features = collected.ToArray();
                collected = null;
                return features;
            }
            toFloat32?.Invoke();
            var reference = Features(engines[0]);
            var results = engines.Select((e, i) =>
            {
                var (max, relative) = Difference(reference, Features(e));
                return new EngineResult(e.Name, timings[i], max, relative);
            }).ToList();
            toFloat32?.Invoke();
            return new OnnxCase(TransformId(m), n, m, rowCount, results);
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>
    /// The layer's speed-ups: an engine over its baseline, with the goal of docs/benchmarks.md where there is one
    /// (from sequence length <c>FromLength</c> on).
    /// </summary>
    private static readonly (string Engine, string Baseline, double? Goal, int FromLength)[] Comparisons =
    [
        (OrtFp32, TorchSharp, 1.0, 0),
        (OrtInt8, OrtFp32, 1.5, 4096),
        (TorchSharpBf16, TorchSharp, null, 0),
    ];

    private static string Speed(double ratio) => double.IsNaN(ratio) ? "—" : $"{F(ratio, 2)}×";

    private static string Goal(double ratio, double goal) => double.IsNaN(ratio) ? "—" : ratio >= goal ? $"meets ≥ {F(goal, 1)}" : $"**misses ≥ {F(goal, 1)}**";

    /// <summary>The layer at every N, and the QuickStart model's <c>Transform</c>.</summary>
    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        var p = run.Profile;
        int threads = get_num_threads();
        string bf16 = MeasureBf16 ? "" : "TorchSharp bf16 is not measured: this CPU has no native bfloat16 (libtorch would emulate it, slower than float32, and the library runs float32 there).\n\n";
        var layers = Results.Where(r => r.Id.StartsWith(LayerPrefix, StringComparison.Ordinal)).ToList();
        if (layers.Count > 0)
        {
            bool complete = CaseIds(p).Where(id => id.StartsWith(LayerPrefix, StringComparison.Ordinal)).All(run.Filter.Matches);
            var engines = layers[0].Engines.Select(e => e.Engine).ToList();
            var comparisons = Comparisons.Where(c => engines.Contains(c.Engine)).ToList();
            var header = new List<string> { "N" };
            header.AddRange(engines.Select(e => $"{e} ms"));
            foreach (var c in comparisons)
            {
                header.Add($"{c.Engine} speed-up over {c.Baseline}");
                if (c.Goal is not null) header.Add("goal");
            }
            header.AddRange(engines.Where(e => e != TorchSharp).Select(e => $"{e}: max abs / rel. diff"));
            var rounds = layers.Select(l => l.Engines[0].Timing.Repetitions).Distinct().Order().ToList();
            string md = $"One layer: float input (B, N, C), width {p.Channels}, {p.Heads} heads, FF {p.FeedForward}, k = {p.ProjectedLengths[0]} (layerwise), " +
                        $"post-norm, batch {p.Batch}, output (B, N·C); {threads} threads on each side; median of {string.Join("–", new[] { rounds[0], rounds[^1] }.Distinct())} " +
                        $"rounds; load average (1/5/15 min) {layers[0].Load.Before} at the start, {layers[^1].Load.After} at the end.\n\n{bf16}" +
                Table(header, layers.Select(l =>
                {
                    var cells = new List<string> { $"{l.SequenceLength}" };
                    cells.AddRange(engines.Select(e => F(l.Find(e)!.Timing.MedianMs, 2)));
                    foreach (var c in comparisons)
                    {
                        double speed = l.Speed(c.Engine, c.Baseline);
                        cells.Add($"**{Speed(speed)}**");
                        if (c.Goal is { } goal) cells.Add(l.SequenceLength >= c.FromLength ? Goal(speed, goal) : "");
                    }
                    cells.AddRange(engines.Where(e => e != TorchSharp).Select(e => $"{G3(l.Find(e)!.MaxAbsDifference)} / {G3(l.Find(e)!.RelativeDifference)}"));
                    return cells;
                }));
            yield return new("onnx-layer", md, complete);
        }
        foreach (var t in Results.Where(r => r.Id.StartsWith(TransformPrefix, StringComparison.Ordinal)))
        {
            string md = $"{t.Model!.Describe}; {t.Items} rows per pass, {threads} threads on each side; median of {t.Engines[0].Timing.Repetitions} rounds; " +
                        $"load average (1/5/15 min) {t.Load.Before} at the start, {t.Load.After} at the end.\n\n{bf16}" +
                Table(["", "rows/s", "speed-up over `Transform`", "speed-up over batches by hand", "per-round speed-ups over `Transform`", "max abs / rel. diff"],
                    t.Engines.Select(e => new[]
                    {
                        e.Engine, F(t.Items / (e.Timing.MedianMs * 1e-3), 1),
                        e.Engine == TransformTorchSharp ? "" : $"**{Speed(t.Speed(e.Engine, TransformTorchSharp))}**",
                        e.Engine is TransformTorchSharp or TransformByHand ? "" : $"**{Speed(t.Speed(e.Engine, TransformByHand))}**",
                        e.Engine == TransformTorchSharp ? "" : string.Join(", ", t.Ratios(e.Engine, TransformTorchSharp).Select(r => F(r, 2))),
                        e.Engine == TransformTorchSharp ? "" : $"{G3(e.MaxAbsDifference)} / {G3(e.RelativeDifference)}",
                    }));
            yield return new("onnx-transform", md);
        }
    }
}
