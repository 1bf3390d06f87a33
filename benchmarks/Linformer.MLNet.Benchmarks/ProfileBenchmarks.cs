using static Linformer.MLNet.Benchmarks.Markdown;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// Where the time of one layer goes (<see cref="LayerProfiler"/>): the library's shared and per-head Linformer paths
/// at the first k at every profile length, and full attention at the shortest one only (its O(N²) attention would
/// dominate the run time at longer ones). CPU only.
/// </summary>
internal sealed class ProfileBenchmarks : IBenchmarkSection
{
    public List<LayerProfile> Profiles { get; } = [];

    public static IEnumerable<(ModelSpec Model, int SequenceLength)> Cases(RunProfile profile)
    {
        var models = ModelSpec.All(profile);
        foreach (int n in profile.ProfileLengths)
        {
            foreach (var m in models.Where(m => m.Kind == ModelKind.Linformer && m.ProjectedLength == profile.ProjectedLengths[0]))
                yield return (m, n);
            if (n == profile.ProfileLengths.Min()) yield return (models.First(m => m.Kind == ModelKind.FullFused), n);
        }
    }

    private static string Id(ModelSpec model, int n) => $"profile/{model.Id}/{n}";

    public IEnumerable<string> CaseIds(RunProfile profile) => Cases(profile).Select(c => Id(c.Model, c.SequenceLength));

    public void Run(BenchmarkRun run)
    {
        foreach (var (model, n) in Cases(run.Profile).Where(c => run.Filter.Matches(Id(c.Model, c.SequenceLength))))
        {
            if (BenchDevice.IsCuda)
            {
                run.Log.WriteLine($"{Id(model, n)}: skipped, the part-by-part profile runs on the CPU only");
                continue;
            }
            var p = LayerProfiler.Profile(model, n, run.Profile);
            Profiles.Add(p);
            run.Log.WriteLine($"{Id(model, n)}: whole layer {p.WholeLayer.MedianMs:F2} ms, sum of parts {p.SumOfPartsMs:F2} ms");
        }
    }

    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        if (Profiles.Count == 0) yield break;
        bool complete = CaseIds(run.Profile).All(run.Filter.Matches);
        string OfMatmul(double rate) => run.AttainableGflopPerSecond is { } peak ? Pct(rate / peak) : "—";
        yield return new("profile-summary", Table(
            ["layer", "whole layer ms", "sum of parts ms", "whole layer GFLOP/s", "of matmul", "dense maps", "attention + projections", "elementwise"],
            Profiles.Select(p =>
            {
                double rate = Flops.GflopPerSecond(Flops.Forward(p.Model, p.SequenceLength, run.Profile), p.WholeLayer.MedianMs);
                string Share(PartKind kind) => Pct(p.Parts.Where(x => x.Kind == kind).Sum(x => x.Timing.MedianMs) / p.SumOfPartsMs);
                return new[]
                {
                    $"{p.Model.Label}, N = {p.SequenceLength}", F(p.WholeLayer.MedianMs, 2), F(p.SumOfPartsMs, 2), F(rate, 0), OfMatmul(rate),
                    Share(PartKind.Dense), Share(PartKind.Attention), Share(PartKind.Elementwise),
                };
            })), complete);
        yield return new("profile-parts", string.Join("\n", Profiles.Select(p =>
            $"**{p.Model.Label}, N = {p.SequenceLength}**\n\n" +
            Table(["part", "ms", "share", "GFLOP", "GFLOP/s", "of matmul", "note"], p.Parts.Select(x => new[]
            {
                x.Name, F(x.Timing.MedianMs, 2), Pct(x.Timing.MedianMs / p.SumOfPartsMs),
                x.Flops > 0 ? G3(x.Flops / 1e9) : "—", x.Flops > 0 ? F(Flops.GflopPerSecond(x.Flops, x.Timing.MedianMs), 1) : "—",
                x.Flops > 0 ? OfMatmul(Flops.GflopPerSecond(x.Flops, x.Timing.MedianMs)) : "—", x.Note ?? "",
            })) +
            (p.Alternatives.Count == 0 ? "" : "\n" + Table(["alternative", "ms", "note"],
                p.Alternatives.Select(x => new[] { x.Name, F(x.Timing.MedianMs, 2), x.Note ?? "" }))))), complete);
    }
}
