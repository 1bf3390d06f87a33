using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using static Linformer.MLNet.Benchmarks.Markdown;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// Peak memory of <c>Fit</c> against the number of training rows (docs/memory.md): a tiny model trains one epoch on
/// generated rows of N = 512 tokens (the full profile: 10 000 and 200 000 rows; as Int64 ids, 200 000 rows are 0.8 GB,
/// what holding them in memory before training would cost). Each size runs in a process of its own (the program runs
/// itself with <c>--fit-memory-child ROWS</c>), so that one run's peak cannot hide another's.
/// </summary>
internal sealed class StreamingMemory : IBenchmarkSection
{
    private const int N = 512, Vocabulary = 256;
    public const string ChildFlag = "--fit-memory-child";

    public sealed class Row
    {
        [VectorType(N)] public int[] Tokens { get; set; } = [];
        public bool Label { get; set; }
    }

    private readonly List<(int Rows, double PeakMiB, double RiseMiB, double Seconds)> results = [];

    private static string Id(int rows) => $"memory/fit/{rows}";

    public IEnumerable<string> CaseIds(RunProfile profile) => profile.FitMemoryRows.Select(Id);

    public void Run(BenchmarkRun run)
    {
        foreach (int rows in run.Profile.FitMemoryRows.Where(r => run.Filter.Matches(Id(r))))
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
            foreach (var a in new[] { ChildFlag, rows.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{Id(rows)}: the child process exited with {process.ExitCode}: {output}{error.Result}");
            var v = output.Trim().Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();   // peak MiB, rise MiB, seconds
            results.Add((rows, v[0], v[1], v[2]));
            run.Log.WriteLine($"{Id(rows)}: peak RSS during Fit {v[0]:F1} MiB ({v[1]:F1} MiB above the RSS before), {v[2]:F1} s");
        }
    }

    public IEnumerable<ResultTable> Tables(BenchmarkRun run)
    {
        if (results.Count == 0) yield break;
        var (first, last) = (results[0], results[^1]);
        yield return new("fit-memory", Table(["rows", "the rows as Int64 ids", "peak RSS during `Fit`", "rise above the RSS before `Fit`", "`Fit` time"],
            results.Select(r => new[]
            {
                r.Rows.ToString("N0", CultureInfo.InvariantCulture), $"{F(r.Rows * (double)N * sizeof(long) / (1 << 20), 0)} MiB",
                $"{F(r.PeakMiB, 0)} MiB", $"{F(r.RiseMiB, 0)} MiB", $"{F(r.Seconds, 0)} s",
            })) + (results.Count < 2 ? "" : $"\nPeak RSS, {last.Rows:N0} rows ÷ {first.Rows:N0} rows: **{F(last.PeakMiB / first.PeakMiB, 3)}** " +
                                              $"(the rise above the RSS before `Fit`: **{F(last.RiseMiB / first.RiseMiB, 3)}**).\n"),
            CaseIds(run.Profile).All(run.Filter.Matches), "memory.md");
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

    /// <summary>One size, in the child process: writes "peak-MiB rise-MiB seconds" on one line.</summary>
    public static int Child(int rows)
    {
        // One intra-op thread: the model is tiny, and on a busy machine libtorch's thread pool only adds contention.
        TorchSharp.torch.set_num_threads(1);
        var ml = new MLContext(seed: 1);
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", LabelColumnName = "Label", VocabularySize = Vocabulary, ModelWidth = 8, ProjectedLength = 8,
            Heads = 2, Depth = 1, FeedForwardSize = 16, Dropout = 0, FeedForwardDropout = 0, Epochs = 1, BatchSize = 256,
            ValidationFraction = 0.1,
        };
        var watch = Stopwatch.StartNew();
        LinformerTransformer? model = null;
        long? rise = PeakMemory.Measure(() => model = ml.Transforms.Linformer(options).Fit(ml.Data.LoadFromEnumerable(Generate(rows))));
        watch.Stop();
        model!.Dispose();
        if (rise is null)
        {
            Console.Error.WriteLine("peak memory is measured on Linux only (/proc/self/status).");
            return 2;
        }
        long peak = PeakMemory.HighWaterMarkBytes();   // PeakMemory.Measure reset it before Fit
        Console.WriteLine(FormattableString.Invariant($"{peak / 1048576.0:F1} {rise.Value / 1048576.0:F1} {watch.Elapsed.TotalSeconds:F1}"));
        return 0;
    }
}
