using static Linformer.MLNet.Benchmarks.Markdown;

namespace Linformer.MLNet.Benchmarks;

/// <summary>The ML.NET section's tables: Transform throughput and its parts, PredictionEngine latency, Fit throughput.</summary>
internal sealed partial class MlNetBenchmarks
{
    /// <summary>The ratio of ML.NET throughput to the raw network's that the component aims for.</summary>
    public const double OverheadGoal = 0.9;

    private static string Verdict(double ratio) => ratio >= OverheadGoal ? "meets the goal" : $"**misses the goal by {F(OverheadGoal - ratio, 2)}**";

    private static string Ratios(IEnumerable<double> ratios) => string.Join(", ", ratios.Select(v => F(v, 2)));

    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        if (TransformOverheads.Count > 0)
        {
            bool complete = run.Profile.MlNet.Transform.All(m => run.Filter.Matches(MlNetSettings.TransformId(m)));
            yield return new("transform", Table(["model", "ML.NET rows/s", "raw rows/s", "ratio", "per-round ratios", "goal"],
                TransformOverheads.Select(x => new[]
                {
                    x.Model.Describe, F(x.MlNetRowsPerSecond, 1), F(x.RawRowsPerSecond, 1), $"**{F(x.Ratio, 2)}**", Ratios(x.PairedRatios), Verdict(x.Ratio),
                })), complete);
            // Median ms per pass, with shares of the ML.NET pass; rest = ML.NET − raw − read rows − build tensors.
            yield return new("transform-parts", Table(["model", "ML.NET pass", "raw network", "read rows", "build tensors", "rest"],
                TransformOverheads.Select(x =>
                {
                    double total = x.MlNet.MedianMs, rest = total - x.Raw.MedianMs - x.ReadRows.MedianMs - x.BuildTensors.MedianMs;
                    string Part(double ms) => $"{F(ms, 1)} ({Pct(ms / total)})";
                    return new[]
                    {
                        $"{x.Model.Name}, N = {x.Model.SequenceLength}", F(total, 1), Part(x.Raw.MedianMs), Part(x.ReadRows.MedianMs),
                        Part(x.BuildTensors.MedianMs), Part(rest),
                    };
                })), complete);
        }
        foreach (var p in PredictLatencies)
            yield return new("predict", Table(["", "median ms", "p95 ms", "min ms", "raw ÷ engine"],
            [
                ["`engine.Predict(row)`", F(p.Engine.MedianMs, 2), F(p.Engine.Percentile(0.95), 2), F(p.Engine.MinMs, 2), $"**{F(p.Ratio, 2)}** ({Verdict(p.Ratio)})"],
                ["raw network, batch of 1 (prepared tensors)", F(p.Raw.MedianMs, 2), F(p.Raw.Percentile(0.95), 2), F(p.Raw.MinMs, 2), ""],
            ]));
        foreach (var f in FitThroughputs)
            yield return new("fit", Table(["", "whole run, median ms", "sequences/s", "per step, median ms", "per-step sequences/s", "Fit ÷ raw, whole run (rounds)", "Fit ÷ raw, per step"],
            [
                ["`Fit`", F(f.Fit.MedianMs, 0), F(f.FitSequencesPerSecond, 2), F(f.FitStep.MedianMs, 1), F(f.Model.Batch / (f.FitStep.MedianMs * 1e-3), 2),
                    $"**{F(f.Ratio, 2)}** ({Ratios(f.PairedRatios)}; {Verdict(f.Ratio)})", $"**{F(f.StepRatio, 2)}**"],
                ["raw loop", F(f.Raw.MedianMs, 0), F(f.RawSequencesPerSecond, 2), F(f.RawStep.MedianMs, 1), F(f.Model.Batch / (f.RawStep.MedianMs * 1e-3), 2), "", ""],
            ]));
    }
}
