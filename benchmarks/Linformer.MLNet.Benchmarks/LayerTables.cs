using static Linformer.MLNet.Benchmarks.Markdown;

namespace Linformer.MLNet.Benchmarks;

/// <summary>The layer section's tables: time, memory, the paper's Table 3, FLOP rates, growth with N, every case.</summary>
internal sealed partial class LayerBenchmarks
{
    /// <summary>The paper's Table 3 (Wang et al. 2020, V100, inference), k = 128: N → (speed-up, memory saving) over the standard Transformer.</summary>
    private static readonly Dictionary<int, (double SpeedUp, double MemorySaving)> PaperK128 = new()
    {
        [512] = (1.5, 1.7), [1024] = (1.7, 3.0), [2048] = (2.6, 6.1), [4096] = (3.4, 14), [8192] = (5.5, 28), [16384] = (8.6, 56),
    };

    private static readonly Mode[] Modes = [Mode.Inference, Mode.Training];

    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        bool complete = CaseIds(run.Profile).All(run.Filter.Matches);   // every table draws on many cases
        return AllTables(run).Select(t => t with { Complete = complete });
    }

    private IEnumerable<ResultTable> AllTables(BenchmarkRun run)
    {
        var ns = run.Profile.SequenceLengths;
        var fused = Models.FirstOrDefault(m => m.Kind == ModelKind.FullFused);
        var tel = Models.FirstOrDefault(m => m.Kind == ModelKind.TorchEncoderLayer);
        var linformers = Models.Where(m => m.Kind == ModelKind.Linformer).ToList();
        var headers = Models.Select(m => $"`{m.Id}`").Prepend("N").ToList();
        if (Matmuls.Count > 0)
            yield return new("matmul", Table(["matmul", "when", "median ms", "GFLOP/s"],
                Matmuls.Select(m => new[] { $"{m.Size}³", m.When, Ms(m.Timing.MedianMs), F(m.GflopPerSecond, 1) })
                    .Append(["best rate of the run (also 1024³ checks around each N)", "", "", $"**{F(run.AttainableGflopPerSecond ?? double.NaN, 1)}**"])));

        foreach (var mode in Modes)
        {
            string m = mode.ToString().ToLowerInvariant();
            var rows = ns.Where(n => Layers.Any(x => x.Mode == mode && x.SequenceLength == n)).ToList();
            if (rows.Count == 0) continue;
            // A row per N, a column per model.
            string ByLength(IEnumerable<int> lengths, Func<LayerResult?, ModelSpec, int, string> cell)
                => Table(headers, lengths.Select(n => Models.Select(x => cell(Find(mode, x, n), x, n)).Prepend($"{n}")));
            yield return new($"{m}-time", ByLength(rows, (r, _, _) => Ms(r?.MedianMs)));
            yield return new($"{m}-memory", ByLength(rows, (r, _, _) => r?.PeakMiB is { } mib ? F(mib, 1) : "—"));

            // Rates: GFLOP per step (training: 3 × forward), achieved GFLOP/s and the fraction of the attainable rate.
            yield return new($"{m}-efficiency", ByLength(rows.Where(n => Models.Any(x => Find(mode, x, n)?.Measured == true)), (r, x, n) =>
            {
                if (r is not { Measured: true }) return "—";
                double flops = Flops.Step(x, n, run.Profile, mode), rate = Flops.GflopPerSecond(flops, r.MedianMs!.Value);
                string of = run.AttainableGflopPerSecond is { } peak ? $" ({Pct(rate / peak)})" : "";
                return $"{G3(flops / 1e9)} GFLOP: {F(rate, 1)}{of}";
            }));

            var pairs = ns.Zip(ns.Skip(1)).ToList();
            if (pairs.Count > 0)
                yield return new($"{m}-growth", Table(pairs.Select(p => $"{p.First} → {p.Second}").Prepend("model").ToList(),
                    Models.Select(x => pairs.Select(p => Find(mode, x, p.Second)?.MedianMs / Find(mode, x, p.First)?.MedianMs is { } g ? F(g, 2) : "—")
                        .Prepend($"`{x.Id}`"))));
        }

        if (fused is not null && tel is not null && Layers.Any(x => x.Mode == Mode.Inference && x.Measured))
        {
            var paper = new List<string>();
            foreach (var lin in linformers)
            {
                var rows = ns.Where(n => Find(Mode.Inference, lin, n)?.Measured == true).ToList();
                if (rows.Count == 0) continue;
                paper.Add($"**{lin.Label}**\n\n" + Table(
                    ["N", "paper speed-up", "ours vs TEL", "ours vs fused", "FLOP ratio", "paper memory saving", "ours vs TEL", "ours vs fused"],
                    rows.Select(n =>
                    {
                        var (st, mt) = Ratios(Mode.Inference, lin, tel, n);
                        var (sf, mf) = Ratios(Mode.Inference, lin, fused, n);
                        bool quoted = lin.ProjectedLength == 128 && PaperK128.ContainsKey(n);
                        return new[]
                        {
                            $"{n}", quoted ? PaperRatio(PaperK128[n].SpeedUp) : "—", Times(st), Times(sf),
                            Times(Flops.Forward(fused, n, run.Profile) / Flops.Forward(lin, n, run.Profile)),
                            quoted ? PaperRatio(PaperK128[n].MemorySaving) : "—", Times(mt), Times(mf),
                        };
                    })));
            }
            if (paper.Count > 0) yield return new("paper", string.Join("\n", paper));
        }
        if (fused is not null && tel is not null && Layers.Any(x => x.Mode == Mode.Training && x.Measured))
            yield return new("paper-training", Table(linformers.SelectMany(l => new[] { $"`{l.Id}` vs TEL", "vs fused" }).Prepend("N").ToList(),
                ns.Where(n => linformers.Any(l => Find(Mode.Training, l, n)?.Measured == true)).Select(n => linformers.SelectMany(l =>
                {
                    var (st, mt) = Ratios(Mode.Training, l, tel, n);
                    var (sf, mf) = Ratios(Mode.Training, l, fused, n);
                    return new[] { $"{Times(st)} / {Times(mt)}", $"{Times(sf)} / {Times(mf)}" };
                }).Prepend($"{n}"))));

        if (Calibrations.Count > 0)
        {
            var cal = Calibrations.OrderBy(c => c.SequenceLength).ToList();
            yield return new("machine-speed", Table(cal.Select(c => $"N = {c.SequenceLength}").Prepend("").ToList(),
                [cal.Select(c => F(c.Before, 0)).Prepend("before"), cal.Select(c => F(c.After, 0)).Prepend("after")]));
        }

        if (Matmuls.Count > 0 || Layers.Count > 0)
            yield return new("all-cases", Table(["case", "median ms", "min ms", "max ms", "reps", "peak MiB", "CPU use"],
                Matmuls.Select(m => new[] { $"`matmul/{m.Size}` ({m.When})", F(m.Timing.MedianMs, 2), F(m.Timing.MinMs, 2), F(m.Timing.MaxMs, 2), $"{m.Timing.Repetitions}", "—", "—" })
                    .Concat(Layers.Select(x => x.Timing is { } t
                        ? new[] { $"`{x.Id}`", F(t.MedianMs, 2), F(t.MinMs, 2), F(t.MaxMs, 2), $"{t.Repetitions}", x.PeakMiB is { } p ? F(p, 1) : "—", x.CpuUtilisation is { } u ? Pct(u) : "—" }
                        : [$"`{x.Id}`", $"skipped: {x.Skipped}", "", "", "", "", ""]))));
    }

    /// <summary>(time of baseline ÷ time of model, memory of baseline ÷ memory of model); NaN where missing.</summary>
    private (double Speed, double Memory) Ratios(Mode mode, ModelSpec model, ModelSpec baseline, int n)
    {
        var (a, b) = (Find(mode, model, n), Find(mode, baseline, n));
        return (b?.MedianMs / a?.MedianMs ?? double.NaN, a?.PeakBytes is > 0 && b?.PeakBytes is { } pb ? (double)pb / a.PeakBytes.Value : double.NaN);
    }

    /// <summary>The paper's precision: one decimal below 10, none above.</summary>
    private static string PaperRatio(double v) => v < 10 ? Times(v) : $"{F(v, 0)}×";

    /// <summary>Three significant digits or so: 6.44, 12.3, 170, 3227.</summary>
    private static string Ms(double? ms) => ms switch { null => "—", < 10 => F(ms.Value, 2), < 100 => F(ms.Value, 1), _ => F(ms.Value, 0) };
}
