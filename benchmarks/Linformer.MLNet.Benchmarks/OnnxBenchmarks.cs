using Linformer.MLNet.Modules;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using static Linformer.MLNet.Benchmarks.Markdown;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

// Shapes: B batch, N sequence length, C model width.

/// <summary>
/// TorchSharp against ONNX Runtime on the graph <see cref="LinformerTransformer.ExportToOnnx(Stream)"/> writes, float32 and
/// int8 (docs/benchmarks.md, section ONNX Runtime): one Linformer layer at every N of the profile, the engines taking
/// turns (<see cref="Harness.Side"/>), ONNX Runtime with every graph optimisation and as many intra-op threads as
/// libtorch uses. The QuickStart model's <c>Transform</c> through ONNX Runtime is in <see cref="MlNetBenchmarks"/>.
/// </summary>
internal sealed class OnnxBenchmarks : IBenchmarkSection
{
    public const string TorchSharp = "TorchSharp fp32", OrtFp32 = "ONNX Runtime fp32", OrtInt8 = "ONNX Runtime int8";
    private const string Prefix = "onnx/layer/";

    /// <summary>The speed-ups the table shows: an engine over its baseline, with its goal from sequence length <c>FromLength</c> on.</summary>
    private static readonly (string Engine, string Baseline, double Goal, int FromLength)[] Goals = [(OrtFp32, TorchSharp, 1.0, 0), (OrtInt8, OrtFp32, 1.5, 4096)];

    private sealed class ValuesRow { public float[] Values { get; set; } = []; }

    public List<Comparison> Results { get; } = [];

    public IEnumerable<string> CaseIds(RunProfile profile) => profile.SequenceLengths.Select(n => $"{Prefix}{n}");

    public void Run(BenchmarkRun run)
    {
        foreach (int n in run.Profile.SequenceLengths.Where(n => run.Filter.Matches($"{Prefix}{n}")))
        {
            string before = MachineInfo.LoadAverage();
            var c = Layer(n, run) with { Load = (before, MachineInfo.LoadAverage()) };
            Results.Add(c);
            foreach (var e in c.Sides)
                run.Log.WriteLine($"{c.Id}: {e.Name} median {e.Timing.MedianMs:F2} ms (rounds: {string.Join(", ", e.Timing.SamplesMs.Select(x => F(x, 1)))}), max |diff| {e.MaxAbsDifference:E1}");
        }
    }

    /// <summary>
    /// One Linformer layer, the layer of the layer benchmark (profile width, heads, FF, the first k, layerwise, post-norm,
    /// GELU, batch): a float-input transformer whose input channels equal the width (so no input map), its whole
    /// (B, N, C) output as the graph's <c>features</c>. TorchSharp runs the network's forward without a mask, as
    /// <c>Transform</c> does when nothing is padded; the graph always takes one (all true). Inputs and the output buffer
    /// are made once, so a timed ONNX Runtime call is the session's work alone.
    /// </summary>
    private static Comparison Layer(int n, BenchmarkRun run)
    {
        var p = run.Profile;
        var random = new Random(2);
        float[] values = Enumerable.Range(0, p.Batch * n * p.Channels).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var rows = values.Chunk(n * p.Channels).Select(v => new ValuesRow { Values = v }).ToList();
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
        using var dataScope = NewDisposeScope();
        var x = tensor(values, new long[] { p.Batch, n, p.Channels });   // (B, N, C)
        var output = new float[p.Batch * n * p.Channels];

        var engines = new List<(string Name, Func<double> Call)>
        {
            (TorchSharp, () =>
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                network.forward(x, null).contiguous().data<float>().CopyTo(output);   // (B, N, C)
                return output[0];
            }),
        };
        var owned = new List<IDisposable>();   // sessions, run options, ONNX Runtime values
        try
        {
            var input = OrtValue.CreateTensorValueFromMemory(values, new long[] { p.Batch, n, p.Channels });
            var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(true, p.Batch * n).ToArray(), new long[] { p.Batch, n });
            var outputValue = OrtValue.CreateTensorValueFromMemory(output, new long[] { p.Batch, (long)n * p.Channels });
            var runOptions = new RunOptions();
            var sessionOptions = new SessionOptions
            {
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = get_num_threads(), InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            };
            // Idle ONNX Runtime threads spin by default: on shared cores they slowed whichever engine ran next (up to
            // 2× at N = 512, alternating with the order) and cost ONNX Runtime nothing measurable when off.
            sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            owned.AddRange([input, mask, outputValue, runOptions, sessionOptions]);
            foreach (var (engine, quantization) in new[] { (OrtFp32, LinformerOnnxQuantization.None), (OrtInt8, LinformerOnnxQuantization.Int8) })
            {
                using var graph = new MemoryStream();
                transformer.ExportToOnnx(graph, quantization);
                var session = new InferenceSession(graph.ToArray(), sessionOptions);
                owned.Add(session);
                engines.Add((engine, () =>
                {
                    session.Run(runOptions, ["input", "mask"], [input, mask], ["features"], [outputValue]);
                    return output[0];
                }));
            }
            // One untimed call of each fixes the rounds: as many as the policy's budget allows the slowest engine.
            double slowestMs = engines.Max(e => Harness.Time(() => e.Call(), new RepetitionPolicy(0, 1, 1, 0)).MedianMs);
            int rounds = p.Layer.RepetitionsFor(slowestMs);
            var cases = engines.Select(e => Harness.Side(e.Call, Math.Max(0, p.Layer.Warmups - 1), rounds)).ToList();
            Harness.RunInterleaved(cases, null, null, rounds);
            float[] Output(Func<double> call)
            {
                call();
                return (float[])output.Clone();
            }
            var reference = Output(engines[0].Call);
            return new Comparison($"{Prefix}{n}", null, n, p.Batch, engines.Select((e, i) =>
            {
                var (max, relative) = Comparison.Difference(reference, Output(e.Call));
                return new SideResult(e.Name, cases[i].Timing, max, relative);
            }).ToList());
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        if (Results.Count == 0) yield break;
        var p = run.Profile;
        var engines = Results[0].Sides.Select(e => e.Name).ToList();
        var rounds = Results.Select(l => l[TorchSharp].Timing.Repetitions).Distinct().Order().ToList();
        string md = $"One layer: float input (B, N, C), width {p.Channels}, {p.Heads} heads, FF {p.FeedForward}, k = {p.ProjectedLengths[0]} (layerwise), " +
                    $"post-norm, batch {p.Batch}, output (B, N·C); {get_num_threads()} threads on each side; median of {string.Join("–", new[] { rounds[0], rounds[^1] }.Distinct())} " +
                    $"rounds; load average (1/5/15 min) {Results[0].Load.Before} at the start, {Results[^1].Load.After} at the end.\n\n" +
            Table([
                    "N", .. engines.Select(e => $"{e} ms"), .. Goals.SelectMany(g => new[] { $"{g.Engine} speed-up over {g.Baseline}", "goal" }),
                    .. engines.Skip(1).Select(e => $"{e}: max abs / rel. diff"),
                ],
                Results.Select(l => (IEnumerable<string>)[
                    $"{l.SequenceLength}", .. engines.Select(e => F(l[e].Timing.MedianMs, 2)),
                    .. Goals.SelectMany(g => l.Speed(g.Engine, g.Baseline) is var speed
                        ? new[] { $"**{F(speed, 2)}×**", l.SequenceLength < g.FromLength ? "" : speed >= g.Goal ? $"meets ≥ {F(g.Goal, 1)}" : $"**misses ≥ {F(g.Goal, 1)}**" }
                        : []),
                    .. engines.Skip(1).Select(e => $"{G3(l[e].MaxAbsDifference)} / {G3(l[e].RelativeDifference)}"),
                ]));
        yield return new("onnx-layer", md, CaseIds(p).All(run.Filter.Matches));
    }
}
