using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// Peak memory of <c>Fit</c> against the number of training rows (docs/memory.md): a tiny model trains one epoch on
/// 10 000 and on 200 000 generated rows of N = 512 tokens (as Int64 ids, 200 000 rows are 0.8 GB, as held in memory
/// before training read from the cursor), each in a fresh process, and the peak resident memory of each Fit is
/// printed side by side.
/// <code>
/// dotnet run -c Release --project benchmarks/Linformer.MLNet.Benchmarks -- streaming-memory [rows...]
/// </code>
/// Each size runs as <c>streaming-memory --child ROWS</c> in its own process, so one run's peak cannot hide another's.
/// </summary>
internal static class StreamingMemory
{
    private const int N = 512;
    private const int Vocabulary = 256;

    public sealed class Row
    {
        [VectorType(N)] public int[] Tokens { get; set; } = [];
        public bool Label { get; set; }
    }

    public static int Run(string[] args)
    {
        if (args is ["--child", var count]) return Child(int.Parse(count, CultureInfo.InvariantCulture));
        var sizes = args.Length > 0 ? args.Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [10_000, 200_000];
        Console.WriteLine($"Fit's peak memory against the number of rows: N = {N} tokens, width 8, 1 layer, k = 8, batch 256, 1 epoch, 1 thread, " +
                          $"ValidationFraction 0.1, default shuffle buffer; each size in its own process; {MachineInfo.Describe()}");
        var peaks = new List<(int Rows, double PeakMiB, double RiseMiB, double Seconds)>();
        foreach (int rows in sizes)
        {
            var (exit, output) = RunChild(rows);
            var lines = output.TrimEnd().Split('\n');
            Console.WriteLine(string.Join('\n', exit == 0 ? lines[..^1] : lines));
            if (exit != 0) { Console.Error.WriteLine($"streaming-memory --child {rows} exited with {exit}."); return exit; }
            // The child's last line, not shown: peak MiB, rise MiB, seconds.
            var v = lines[^1].Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            peaks.Add((rows, v[0], v[1], v[2]));
        }
        Console.WriteLine();
        Console.Write(Markdown.Table(["rows", "as Int64 ids in memory", "peak RSS during Fit", "rise above RSS before Fit", "Fit time"], peaks.Select(p => new[]
        {
            p.Rows.ToString("N0", CultureInfo.InvariantCulture), $"{Markdown.F(p.Rows * (double)N * sizeof(long) / (1 << 20), 0)} MiB",
            $"{Markdown.F(p.PeakMiB, 0)} MiB", $"{Markdown.F(p.RiseMiB, 0)} MiB", $"{Markdown.F(p.Seconds, 0)} s",
        })));
        if (peaks.Count > 1)
            Console.WriteLine(FormattableString.Invariant($"peak RSS, {peaks[^1].Rows:N0} rows ÷ {peaks[0].Rows:N0} rows: {peaks[^1].PeakMiB / peaks[0].PeakMiB:F3}"));
        return 0;
    }

    private static (int Exit, string Output) RunChild(int rows)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        foreach (var a in new[] { "streaming-memory", "--child", rows.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    /// <summary>Rows made when the cursor asks for them (ML.NET streams a lazy enumerable, pass by pass): token 0 decides the label.</summary>
    private static IEnumerable<Row> Generate(int count)
    {
        for (int r = 0; r < count; r++)
        {
            var random = new Random(r);
            var tokens = new int[N];
            for (int i = 0; i < N; i++) tokens[i] = random.Next(Vocabulary);
            yield return new Row { Tokens = tokens, Label = tokens[0] < Vocabulary / 2 };
        }
    }

    private static int Child(int rows)
    {
        // One intra-op thread: the model is tiny, and on a busy machine libtorch's thread pool only adds contention.
        TorchSharp.torch.set_num_threads(1);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Generate(rows));
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", LabelColumnName = "Label", VocabularySize = Vocabulary, ModelWidth = 8, ProjectedLength = 8,
            Heads = 2, Depth = 1, FeedForwardSize = 16, Dropout = 0, FeedForwardDropout = 0, Epochs = 1, BatchSize = 256,
            ValidationFraction = 0.1,
        };
        var watch = Stopwatch.StartNew();
        LinformerTransformer? model = null;
        long? rise = PeakMemory.Measure(() => model = ml.Transforms.Linformer(options).Fit(data));
        watch.Stop();
        long peak = rise is null ? 0 : PeakMemory.HighWaterMarkBytes();   // PeakMemory.Measure reset it before Fit
        model!.Dispose();
        if (rise is null) { Console.Error.WriteLine("peak memory is measured on Linux only (/proc/self/status)."); return 2; }
        Console.WriteLine(FormattableString.Invariant($"{rows:N0} rows: peak RSS during Fit {peak / 1048576.0:F1} MiB ({rise.Value / 1048576.0:F1} MiB above the RSS before), {watch.Elapsed.TotalSeconds:F1} s"));
        Console.WriteLine(FormattableString.Invariant($"{peak / 1048576.0:F1} {rise.Value / 1048576.0:F1} {watch.Elapsed.TotalSeconds:F1}"));
        return 0;
    }
}
