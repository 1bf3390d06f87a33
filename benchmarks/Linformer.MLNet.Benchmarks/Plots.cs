using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Linformer.MLNet.Benchmarks;

/// <summary>Log–log plots of time and peak memory against N, one line per model, written as PNG.</summary>
internal static class Plots
{
    public const int Width = 900, Height = 560;

    /// <summary>Writes benchmarks-{inference,training}-{time,memory}.png into <paramref name="imageDirectory"/>, those that have data.</summary>
    public static void Write(LayerBenchmarks results, RunProfile profile, string imageDirectory)
    {
        foreach (var mode in new[] { Mode.Inference, Mode.Training })
        {
            string m = mode.ToString().ToLowerInvariant();
            string what = mode == Mode.Inference ? "inference (eval, no_grad)" : "one training step (forward + backward)";
            Plot(results, profile, mode, r => r.MedianMs, "median time (ms)", $"Encoder layer, {what}: time vs N",
                Path.Combine(imageDirectory, $"benchmarks-{m}-time.png"));
            Plot(results, profile, mode, r => r.PeakMiB, "peak extra memory (MiB)", $"Encoder layer, {what}: peak memory vs N",
                Path.Combine(imageDirectory, $"benchmarks-{m}-memory.png"));
        }
    }

    private static void Plot(LayerBenchmarks results, RunProfile profile, Mode mode, Func<LayerResult, double?> value, string yLabel, string title, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var xs = new List<double>();
        var ys = new List<double>();
        int index = 0;
        foreach (var model in results.Models)
        {
            // Log axes are drawn by plotting log10 of the data and labelling the ticks with the original values.
            var points = results.Layers
                .Where(r => r.Mode == mode && r.Model == model && value(r) is > 0)
                .OrderBy(r => r.SequenceLength)
                .Select(r => (X: Math.Log10(r.SequenceLength), Y: Math.Log10(value(r)!.Value)))
                .ToArray();
            var color = palette.GetColor(index++);
            if (points.Length == 0) continue;
            var scatter = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
            scatter.LegendText = model.Label;
            scatter.Color = color;
            scatter.LineWidth = 2;
            scatter.MarkerSize = 7;
            if (model.IsFull) scatter.LinePattern = LinePattern.Dashed;
            xs.AddRange(points.Select(p => p.X));
            ys.AddRange(points.Select(p => p.Y));
        }
        if (xs.Count == 0) return;

        var xTicks = profile.SequenceLengths.Select(n => (double)n).ToArray();
        plot.Axes.Bottom.SetTicks(xTicks.Select(Math.Log10).ToArray(), xTicks.Select(n => n.ToString("0", CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.Left.TickGenerator = new NumericAutomatic
        {
            IntegerTicksOnly = true,   // a label at each power of ten, minor ticks at 2…9 times it
            MinorTickGenerator = new LogMinorTickGenerator(),
            LabelFormatter = y => Math.Pow(10, y).ToString("G4", CultureInfo.InvariantCulture),
        };
        plot.Axes.SetLimitsX(xs.Min() - 0.08, xs.Max() + 0.08);
        plot.Axes.SetLimitsY(ys.Min() - 0.15, ys.Max() + 0.15);
        plot.Title(title);
        plot.XLabel("sequence length N (log scale)");
        plot.YLabel($"{yLabel} (log scale)");
        plot.ShowLegend(Alignment.UpperLeft);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        plot.SavePng(path, Width, Height);
    }
}
