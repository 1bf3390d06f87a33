using ShellProgressBar;

namespace Linformer.MLNet.Examples;

/// <summary>
/// Shows <see cref="LinformerEstimator.Options.Progress"/> reports: a progress bar that moves with every optimizer
/// step when the output is a terminal, one line per epoch otherwise (redirected output, CI logs).
/// </summary>
public sealed class TrainingProgressView : IProgress<LinformerTrainingProgress>, IDisposable
{
    private readonly string title;
    private readonly bool interactive = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is null && TerminalWidth() >= 40;
    private ProgressBar? bar;

    /// <summary>A view whose bar (or lines) carry <paramref name="title"/>.</summary>
    public TrainingProgressView(string title) => this.title = title;

    /// <inheritdoc />
    public void Report(LinformerTrainingProgress p)
    {
        if (!interactive)
        {
            if (p.IsEpochEnd) Console.WriteLine($"  {title}: {Describe(p)}");
            return;
        }
        bar ??= new ProgressBar((int)p.TotalSteps, title, new ProgressBarOptions
        {
            ProgressCharacter = '─', CollapseWhenFinished = true, DisplayTimeInRealTime = false, ShowEstimatedDuration = true,
        });
        bar.EstimatedDuration = p.Remaining;
        bar.Tick((int)p.Step, $"{title}: {Describe(p)}");
        if (p.IsEpochEnd) bar.WriteLine($"  {title}: {Describe(p)}");
    }

    private static string Describe(LinformerTrainingProgress p)
    {
        var text = $"epoch {p.Epoch}/{p.Epochs}, step {p.Step}/{p.TotalSteps}, training loss {p.TrainingLoss:F4}";
        if (p.ValidationLoss is { } loss) text += $", validation loss {loss:F4}";
        if (p.ValidationMetric is { } metric) text += $", validation accuracy {metric:F3}";
        return text + $", {p.RowsPerSecond:F0} rows/s";
    }

    /// <summary>Removes the bar.</summary>
    public void Dispose()
    {
        bar?.Dispose();
        bar = null;
    }

    // A pseudo-terminal without a size reports 0 columns; the bar needs room to draw.
    private static int TerminalWidth()
    {
        try { return Console.WindowWidth; }
        catch (IOException) { return 0; }
    }
}
