using Linformer.MLNet.Modules;
using static Linformer.MLNet.Benchmarks.Markdown;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// float32 against bfloat16, side by side in one run (docs/benchmarks-precision.md): the matrix-product peak of each
/// precision, the layer of the layer section in inference against its own precision's peak, and the QuickStart
/// model's <c>Transform</c> and <c>Fit</c> rows/s. It runs where the CPU has native bf16; elsewhere libtorch would
/// emulate it (far slower than float32, and the library runs float32 there), so only with <c>--emulated-bf16</c>.
/// </summary>
internal sealed class PrecisionBenchmarks(bool emulated) : IBenchmarkSection
{
    private const string Page = "benchmarks-precision.md", Fp32 = "fp32", Bf16 = "bf16";
    private static readonly (string Name, LinformerPrecision Precision)[] Precisions = [(Fp32, LinformerPrecision.Float32), (Bf16, LinformerPrecision.BFloat16)];

    private readonly Dictionary<string, double> peaks = [];   // GFLOP/s
    private readonly List<Comparison> layers = [];
    private Comparison? transform, fit;

    /// <summary>The side of the square products that give each precision's peak: 1024 (emulated bf16 is slow), less in the smoke profile.</summary>
    private static int MatmulSize(RunProfile profile) => Math.Min(1024, profile.MatmulSize);

    public IEnumerable<string> CaseIds(RunProfile profile)
        => [$"precision/matmul/{MatmulSize(profile)}", .. profile.SequenceLengths.Select(n => $"precision/layer/{n}"), "precision/quickstart"];

    public void Run(BenchmarkRun run)
    {
        var p = run.Profile;
        if (!CaseIds(p).Any(run.Filter.Matches)) return;
        if (!BFloat16Support.CpuHasNative && !emulated)
        {
            run.Log.WriteLine("precision: skipped, this CPU has no native bfloat16 (--emulated-bf16 measures libtorch's emulation)");
            return;
        }
        using var assume = BFloat16Support.Assume(native: true);   // or the library would run float32
        int s = MatmulSize(p);
        // Each precision's peak is the best product of the run: timed before and after the other cases.
        void Peaks(string when)
        {
            if (!run.Filter.Matches($"precision/matmul/{s}")) return;
            foreach (var (name, precision) in Precisions)
            {
                var timing = LayerBenchmarks.TimeMatmul(s, p.Layer, precision == LinformerPrecision.Float32 ? ScalarType.Float32 : ScalarType.BFloat16);
                double rate = Flops.GflopPerSecond(Flops.Matmul(s), timing.MinMs);
                peaks[name] = Math.Max(rate, peaks.GetValueOrDefault(name));
                run.Log.WriteLine($"precision/matmul/{s} {name} ({when}): best {rate:F1} GFLOP/s");
            }
        }
        Peaks("start");
        foreach (int n in p.SequenceLengths.Where(n => run.Filter.Matches($"precision/layer/{n}")))
        {
            layers.Add(Layer(n, p));
            run.Log.WriteLine($"precision/layer/{n}: fp32 {layers[^1][Fp32].Timing.MedianMs:F2} ms, bf16 {layers[^1][Bf16].Timing.MedianMs:F2} ms");
        }
        if (run.Filter.Matches("precision/quickstart"))
        {
            (transform, fit) = QuickStart(p.MlNet.Fit, p.MlNet);
            run.Log.WriteLine($"precision/quickstart: Transform {transform.Speed(Bf16, Fp32):F2}×, Fit {fit.Speed(Bf16, Fp32):F2}× (bf16 over fp32)");
        }
        Peaks("end");
    }

    /// <summary>The layer of the layer section (first k, layerwise) in inference, switched between the precisions, in turns.</summary>
    private static Comparison Layer(int n, RunProfile p)
    {
        var spec = new ModelSpec(ModelKind.Linformer, Math.Min(p.ProjectedLengths[0], n));
        using var model = ModelUnderTest.Create(spec, n, p);
        var encoder = model.Encoder!;
        model.Train(false);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(p.Batch, n, p.Channels);                                       // (B, N, C)
        Tensor Forward(LinformerPrecision precision)
        {
            encoder.Precision = precision;
            return encoder.forward(x);                                              // (B, N, C)
        }
        var cases = Precisions.Select(q => Harness.Side(() => { Forward(q.Precision).Dispose(); return 0; }, p.Layer.Warmups, p.Layer.MinRepetitions)).ToList();
        Harness.RunInterleaved(cases, null, null, p.Layer.MinRepetitions);
        var (y32, y16) = (Forward(LinformerPrecision.Float32), Forward(LinformerPrecision.BFloat16));
        double max = (y16 - y32).abs().max().item<float>(), relative = (y16 - y32).norm().item<float>() / (double)y32.norm().item<float>();
        return new Comparison($"precision/layer/{n}", null, n, p.Batch, [new(Fp32, cases[0].Timing), new(Bf16, cases[1].Timing, max, relative)]);
    }

    /// <summary>The QuickStart model's <c>Transform</c> (full passes, in turns) and one-epoch <c>Fit</c> (in turns) in each precision.</summary>
    private static (Comparison Transform, Comparison Fit) QuickStart(MlNetModel m, MlNetSettings s)
    {
        var ml = MlNetBenchmarks.NewContext();
        var data = MlNetBenchmarks.Data(ml, m, s.FitRows, 1);
        using var model = ml.Transforms.Linformer(MlNetBenchmarks.Options(m, epochs: 0, label: false)).Fit(data);
        var cases = Precisions.Select(q => Harness.Side(() => MlNetBenchmarks.TransformPass(model, data, f => f[0]), 1, s.FitRounds,
            () => model.Precision = q.Precision)).ToList();
        Harness.RunInterleaved(cases, null, null, s.FitRounds);
        var transform = new Comparison("precision/quickstart/transform", m, m.SequenceLength, s.FitRows, [new(Fp32, cases[0].Timing), new(Bf16, cases[1].Timing)]);

        var rows = MlNetBenchmarks.TokenRows(m, s.FitRows, 17);
        var runs = Precisions.Select(_ => new List<double>()).ToArray();
        foreach (var (_, precision) in Precisions) MlNetBenchmarks.FitOnce(m, rows.Take(2 * m.Batch).ToList(), 1, [], o => o.Precision = precision);   // warm-up
        for (int round = 0; round < s.FitRounds; round++)
            foreach (int i in round % 2 == 0 ? [0, 1] : new[] { 1, 0 })
                runs[i].Add(MlNetBenchmarks.FitOnce(m, rows, 1, [], o => o.Precision = Precisions[i].Precision));
        return (transform, new Comparison("precision/quickstart/fit", m, m.SequenceLength, s.FitRows, [new(Fp32, new Timing(runs[0])), new(Bf16, new Timing(runs[1]))]));
    }

    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        var p = run.Profile;
        string native = $"Native bfloat16 (libtorch's `at::cpu::is_avx512_bf16_supported`): **{(BFloat16Support.CpuHasNative ? "yes" : "no: every bf16 figure is libtorch's emulation")}**.\n\n";
        if (peaks.Count > 0)
            yield return new("precision-matmul", native + Table(["precision", "GFLOP/s (best of the run)"],
                [.. peaks.Select(x => new[] { x.Key, F(x.Value, 1) }), ["bf16 ÷ fp32", $"{F(peaks[Bf16] / peaks[Fp32], 2)}×"]]), Page: Page);
        if (layers.Count > 0)
        {
            double Peak(string name) => peaks.GetValueOrDefault(name, double.NaN);
            string Rate(Comparison l, string name)
            {
                double rate = Flops.GflopPerSecond(Flops.Forward(new ModelSpec(ModelKind.Linformer, Math.Min(p.ProjectedLengths[0], l.SequenceLength)), l.SequenceLength, p),
                    l[name].Timing.MedianMs);
                return $"{F(rate, 1)} ({Pct(rate / Peak(name))})";
            }
            yield return new("precision-layer", native + Table(["N", "fp32 ms", "bf16 ms", "speed-up (median of rounds)", "fp32 GFLOP/s (of fp32 peak)", "bf16 GFLOP/s (of bf16 peak)", "bf16: max abs / rel. diff"],
                layers.Select(l => new[]
                {
                    $"{l.SequenceLength}", F(l[Fp32].Timing.MedianMs, 2), F(l[Bf16].Timing.MedianMs, 2), $"{F(l.Speed(Bf16, Fp32), 2)}×",
                    Rate(l, Fp32), Rate(l, Bf16), $"{G3(l[Bf16].MaxAbsDifference)} / {G3(l[Bf16].RelativeDifference)}",
                })), CaseIds(p).Where(id => id.StartsWith("precision/layer/", StringComparison.Ordinal)).All(run.Filter.Matches), Page);
        }
        if (transform is not null && fit is not null)
            yield return new("precision-quickstart", native + $"{transform.Model!.Describe}; {transform.Items} rows, median of {transform[Fp32].Timing.Repetitions} rounds.\n\n" +
                Table(["", "fp32 rows/s", "bf16 rows/s", "speed-up (median of rounds)"], new[] { ("`Transform`", transform), ("`Fit` (1 epoch)", fit) }.Select(c => new[]
                {
                    c.Item1, F(c.Item2.Rate(Fp32), 1), F(c.Item2.Rate(Bf16), 1), $"{F(c.Item2.Speed(Bf16, Fp32), 2)}×",
                })), Page: Page);
    }
}
