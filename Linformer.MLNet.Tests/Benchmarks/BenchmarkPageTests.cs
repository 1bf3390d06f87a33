using System.Globalization;
using System.Text.RegularExpressions;

namespace Linformer.MLNet.Tests.Benchmarks;

/// <summary>
/// The sentences of docs/benchmarks.md and README.md that quote benchmark numbers say what the page's generated tables
/// say. The tables are replaced by every run of the benchmark with <c>--update-docs</c>; these tests then fail until
/// whoever ran it has updated the sentences.
/// </summary>
[TestClass]
public sealed class BenchmarkPageTests
{
    private const string Linformer = "linformer-k128-layerwise", Fused = "full-fused", Tel = "torch-encoder-layer";

    private static readonly string Page = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "benchmarks.md"));
    private static readonly string Readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md"));

    /// <summary>One markdown table: the bold line above it (or ""), its header cells and its rows of cells.</summary>
    private sealed record Table(string Title, string[] Header, List<string[]> Rows)
    {
        public int Column(string header) => Array.IndexOf(Header, header) is >= 0 and var i ? i : throw new AssertFailedException($"no column {header} in {string.Join(" | ", Header)}");
    }

    private static string[] Cells(string line) => line.Trim().Trim('|').Split(" | ").Select(c => c.Trim()).ToArray();

    /// <summary>The tables between the markers of <paramref name="name"/>.</summary>
    private static List<Table> Tables(string name)
    {
        var block = Regex.Match(Page, $@"<!-- table:{name} -->\n((?:.|\n)*?)<!-- /table:{name} -->");
        Assert.IsTrue(block.Success, $"docs/benchmarks.md has no table '{name}'");
        var tables = new List<Table>();
        string title = "";
        var lines = block.Groups[1].Value.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith("**", StringComparison.Ordinal)) title = lines[i].Trim('*');
            if (!lines[i].StartsWith('|')) continue;
            if (i + 1 < lines.Length && lines[i + 1].StartsWith("| ---", StringComparison.Ordinal))
            {
                tables.Add(new Table(title, Cells(lines[i]), []));
                i++;
            }
            else tables[^1].Rows.Add(Cells(lines[i]));
        }
        return tables;
    }

    private static string[] Row(string table, string first) => Tables(table).SelectMany(t => t.Rows).Single(r => r[0] == first);

    /// <summary>The first number in a cell ("**0.96**", "102", "0.805 GFLOP: 125.0 (73%)").</summary>
    private static double Number(string cell) => double.Parse(Regex.Match(cell, @"-?\d+(\.\d+)?").Value, CultureInfo.InvariantCulture);

    private static double MedianMs(string caseId) => Number(Row("all-cases", $"`{caseId}`")[1]);
    private static double PeakMiB(string caseId) => Number(Row("all-cases", $"`{caseId}`")[5]);
    private static string F(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>The text (line breaks read as spaces) contains the sentence.</summary>
    private static void Says(string text, string sentence, string where = "docs/benchmarks.md")
        => Assert.Contains(sentence, Regex.Replace(text, @"\s+", " "), $"{where} should say, from its tables: {sentence}");

    [TestMethod]
    public void TheSummarySpeedUpsAndMemoryRatiosAreTheTables()
    {
        string Inference(string model, int n) => $"layer/inference/{model}/{n}";
        double telSpeed = MedianMs(Inference(Tel, 16384)) / MedianMs(Inference(Linformer, 16384));
        double telMemory = PeakMiB(Inference(Tel, 16384)) / PeakMiB(Inference(Linformer, 16384));
        Says(Page, $"is **{F(telSpeed, 1)}× faster** than `nn.TransformerEncoderLayer` and needs **{F(telMemory, 1)}× less peak memory**");
        double fusedSpeed = MedianMs(Inference(Fused, 16384)) / MedianMs(Inference(Linformer, 16384));
        double fusedMemory = PeakMiB(Inference(Fused, 16384)) / PeakMiB(Inference(Linformer, 16384));
        Says(Page, $"the gain at N = 16384 is **{F(fusedSpeed, 1)}×** in time and **{F(fusedMemory, 1)}×** in peak memory");
        double training = MedianMs($"layer/training/{Fused}/16384") / MedianMs($"layer/training/{Linformer}/16384");
        Says(Page, $"A training step (forward + backward) at N = 16384: {F(training, 1)}× faster than fused full attention.");
        Says(Page, $"multiplies the inference time by {Row("inference-growth", $"`{Linformer}`")[^1]} for Linformer k=128 (layerwise) " +
                   $"(linear: 2) and by {Row("inference-growth", $"`{Fused}`")[^1]} for fused full attention");
        Says(Readme, $"and up to {F(telSpeed, 1)}× faster with {F(telMemory, 1)}× less memory than TorchSharp's `nn.TransformerEncoderLayer`", "README.md");
    }

    [TestMethod]
    public void TheReadmeQuotesThePaperComparison()
    {
        // Linformer k=128 (layerwise) is the first table: N, paper speed-up, ours vs TEL, ours vs fused, ...
        var rows = Tables("paper").Single(t => t.Title == "Linformer k=128 (layerwise)").Rows;
        Says(Readme, string.Join(", ", rows.Select((r, i) => $"{r[2]} ({r[1]}) at {(i == 0 ? "N = " : "")}{r[0]}")), "README.md");
        var fused = rows.Select(r => Number(r[3])).ToList();
        Says(Readme, $"against our fused full attention {F(fused.Min(), 1)}× to {F(fused.Max(), 1)}×", "README.md");
        string AtN(int n) => rows.Single(r => r[0] == n.ToString(CultureInfo.InvariantCulture))[3];
        Says(Readme, $"{AtN(512)} faster than fused full attention at N = 512, {AtN(4096)} at 4096, {AtN(16384)} at 16384", "README.md");
    }

    [TestMethod]
    public void TheEfficiencySentencesAreTheTables()
    {
        var table = Tables("inference-efficiency").Single();
        int lin = table.Column($"`{Linformer}`"), fused = table.Column($"`{Fused}`"), tel = table.Column($"`{Tel}`");
        double Percent(string cell) => Number(Regex.Match(cell, @"\((\d+)%\)").Groups[1].Value);
        var rows = table.Rows;
        var linformer = rows.Where(r => Number(r[0]) >= 4096).Select(r => Percent(r[lin])).ToList();
        double best = Number(Row("matmul", "best rate of the run (also 1024³ checks around each N)")[3]);
        Says(Page, $"**{F(linformer.Min(), 0)}%–{F(linformer.Max(), 0)}%** of the {F(best, 0)} GFLOP/s the best fp32 matmul of the run reached");
        Says(Readme, $"The Linformer layer reaches {F(linformer.Min(), 0)}–{F(linformer.Max(), 0)}% of the", "README.md");

        var last = rows.Single(r => r[0] == "16384");
        double telSlower = MedianMs($"layer/inference/{Tel}/16384") / MedianMs($"layer/inference/{Fused}/16384");   // same FLOPs
        Says(Page, $"TEL runs at {F(Percent(last[tel]), 0)}% of the matmul rate and the fused kernel at {F(Percent(last[fused]), 0)}%: " +
                   $"TEL is {F(telSlower, 1)}× slower for the same FLOPs");
    }

    [TestMethod]
    public void TheProfileSentencesAreTheProfileTables()
    {
        var at4096 = Row("profile-summary", "Linformer k=128 (layerwise), N = 4096");
        var at16384 = Row("profile-summary", "Linformer k=128 (layerwise), N = 16384");
        string alone = $"the same layer ran at {at4096[3]} GFLOP/s ({at4096[4]}) at N = 4096 and {at16384[3]} GFLOP/s ({at16384[4]}) at N = 16384";
        Assert.HasCount(2, Regex.Matches(Page, Regex.Escape(alone)), $"docs/benchmarks.md should say twice (summary, efficiency): {alone}");

        var parts = Tables("profile-parts").First(t => t.Title == "Linformer k=128 (layerwise), N = 16384");
        var largest = parts.Rows.MaxBy(r => Number(r[1]))!;
        Says(Page, $"take {at16384[5]}, the sequence projection and attention over k {at16384[6]}, elementwise work {at16384[7]}; " +
                   $"the largest single part is “{largest[0]}” ({largest[2]})");
    }

    [TestMethod]
    public void TheMlNetSentencesAreTheirTables()
    {
        var transform = Tables("transform").Single().Rows;
        double tokens = Number(transform.Single(r => r[0].StartsWith("token ids", StringComparison.Ordinal))[3]);
        double floats = Number(transform.Single(r => r[0].StartsWith("floats", StringComparison.Ordinal))[3]);
        double predict = Number(Row("predict", "`engine.Predict(row)`")[4]);
        double fit = Number(Row("fit", "`Fit`")[5]);
        Says(Page, $"`Transform` reaches {F(tokens, 2)} (tokens) and {F(floats, 2)} (floats) of the raw network's rows per second, " +
                   $"`PredictionEngine` {F(predict, 2)} of a raw single-row forward, `Fit` {F(fit, 2)} of a hand-written TorchSharp training loop");
        Says(Readme, $"`Transform` runs at {F(Math.Min(tokens, floats), 2)}–{F(Math.Max(tokens, floats), 2)}× the raw module's rows per second, " +
                     $"`PredictionEngine` at {F(predict, 2)}× of a raw single-row forward, `Fit` at {F(fit, 2)}× of a hand-written TorchSharp training loop", "README.md");
        Says(Readme, $"The ML.NET layer costs at most {F((1 - Math.Min(tokens, floats)) * 100, 0)}% of the raw module's speed", "README.md");

        var fitRow = Row("fit", "`Fit`");
        double steps = 16 * Number(fitRow[3]);
        Assert.IsLessThan(Number(fitRow[1]), steps, "the page says 16 steps take less than Fit's whole-run median");
        Says(Page, $"16 steps of {fitRow[3]} ms come to {F(steps, 0)} ms, {F(Number(fitRow[1]) - steps, 0)} ms less than the whole run's median of {fitRow[1]} ms");

        var engine = Row("predict", "`engine.Predict(row)`");
        var raw = Row("predict", "raw network, batch of 1 (prepared tensors)");
        Says(Page, $"The engine's median is about {F(Number(engine[1]) - Number(raw[1]), 1)} ms above the raw forward's.");
    }

    [TestMethod]
    public void TheOnnxSentencesAreTheirTables()
    {
        var layer = Tables("onnx-layer").Single();
        int speedColumn = layer.Column("ONNX Runtime fp32 speed-up over TorchSharp fp32"), goalColumn = speedColumn + 1;
        Assert.AreEqual("goal", layer.Header[goalColumn], "the goal column follows the ONNX Runtime fp32 speed-up");
        var speeds = layer.Rows.Select(r => Number(r[speedColumn])).ToList();
        int met = layer.Rows.Count(r => r[goalColumn].StartsWith("meets", StringComparison.Ordinal));
        Assert.AreEqual(speeds.Count(s => s >= 1), met, "a goal cell says 'meets' exactly where the speed-up is at least 1");
        Says(Page, $"ONNX Runtime fp32 ran at {F(speeds.Min(), 2)}× to {F(speeds.Max(), 2)}× the speed of TorchSharp fp32, " +
                   $"meeting the goal at {met} of the {layer.Rows.Count} lengths");
        var at512 = layer.Rows.Single(r => r[0] == "512");
        Assert.AreEqual(speeds.Max(), Number(at512[speedColumn]), "the page says the lead is largest at N = 512");
        double timesRatio = Number(at512[layer.Column("TorchSharp fp32 ms")]) / Number(at512[layer.Column("ONNX Runtime fp32 ms")]);
        Assert.IsGreaterThan(speeds.Max(), timesRatio, "the page says the ratio of the median times is above the median of the per-round ratios at N = 512");
        Says(Page, $"the ratio of the median times ({F(timesRatio, 2)}×) is above the median of the per-round ratios");
        int diffColumn = layer.Column("ONNX Runtime fp32: max abs / rel. diff");
        double maxDiff = layer.Rows.Max(r => double.Parse(r[diffColumn].Split(" / ")[0], CultureInfo.InvariantCulture));
        Says(Page, $"The outputs differ from TorchSharp's by at most {maxDiff.ToString("G3", CultureInfo.InvariantCulture)}.");

        int int8Column = layer.Column("ONNX Runtime int8 speed-up over ONNX Runtime fp32"), int8Goal = int8Column + 1;
        var atLeast4096 = layer.Rows.Where(r => Number(r[0]) >= 4096).ToList();
        var int8Speeds = atLeast4096.Select(r => Number(r[int8Column])).ToList();
        int int8Met = atLeast4096.Count(r => r[int8Goal].StartsWith("meets", StringComparison.Ordinal));
        Assert.AreEqual(int8Speeds.Count(s => s >= 1.5), int8Met, "an int8 goal cell says 'meets' exactly where the speed-up is at least 1.5");
        Says(Page, $"ONNX Runtime int8 ran at {F(int8Speeds.Min(), 2)}× to {F(int8Speeds.Max(), 2)}× the speed of ONNX Runtime fp32 at N ≥ 4096, " +
                   $"meeting the goal of 1.5× at {int8Met} of the {atLeast4096.Count} lengths");
        int int8Diff = layer.Column("ONNX Runtime int8: max abs / rel. diff");
        double int8Relative = layer.Rows.Max(r => double.Parse(r[int8Diff].Split(" / ")[1], CultureInfo.InvariantCulture));
        Says(Page, $"int8's outputs differ from TorchSharp's by at most {int8Relative.ToString("G3", CultureInfo.InvariantCulture)} relative to their size");

        var transforms = Tables("onnx-transform");
        string[] Engine(string model, string engine) => transforms.Single(t => t.Title.StartsWith(model, StringComparison.Ordinal)).Rows.Single(r => r[0] == engine);
        var (fp32, int8) = (Engine("token ids", "ONNX Runtime fp32, `Transform`"), Engine("token ids", "ONNX Runtime int8, `Transform`"));
        Says(Page, $"encoded {fp32[1]} rows/s, {F(Number(fp32[2]), 2)}× `Transform`, and {int8[1]} rows/s from the int8 graph, {F(Number(int8[2]), 2)}× `Transform`");
        Says(Page, $"the float model, 2 layers at batch 32, ran at {F(Number(Engine("floats", "ONNX Runtime fp32, `Transform`")[2]), 2)}× (fp32) " +
                   $"and {F(Number(Engine("floats", "ONNX Runtime int8, `Transform`")[2]), 2)}× (int8)");
    }

    [TestMethod]
    public void TheMemorySentencesAreTheirTable()
    {
        string memory = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "memory.md"));
        var table = Regex.Match(memory, @"<!-- table:fit-memory -->\n((?:.|\n)*?)<!-- /table:fit-memory -->");
        Assert.IsTrue(table.Success, "docs/memory.md has no fit-memory table");
        var rows = table.Groups[1].Value.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && char.IsDigit(l[2])).Select(Cells).ToList();
        Assert.HasCount(2, rows, "docs/memory.md compares two row counts");
        double Count(string[] row) => double.Parse(row[0], NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
        Assert.AreEqual(20, Count(rows[1]) / Count(rows[0]), "the page says twenty times the rows");
        var ratios = Regex.Match(table.Groups[1].Value, @"\*\*([\d.]+)\*\* \(the rise above the RSS before `Fit`: \*\*([\d.]+)\*\*\)");
        Assert.IsTrue(ratios.Success, "the fit-memory table has no ratio line");
        double peak = Number(ratios.Groups[1].Value), rise = Number(ratios.Groups[2].Value);
        Says(memory, $"Twenty times the rows: the peak grows by {F((peak - 1) * 100, 1)}% (the rise by {F((rise - 1) * 100, 1)}%)", "docs/memory.md");
        Says(memory, $"the runs took {rows[0][4]} and {rows[1][4]}", "docs/memory.md");
    }
}
