using System.Globalization;
using System.Text;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// One part of the benchmark. A new part implements this in its own file and is added to the list of sections in
/// Program.cs: it names its cases (the ids the filter selects and <c>--list</c> prints), runs the selected ones
/// (<see cref="CaseFilter.Matches"/>), keeps its results, and returns a table per kind of result. Each table goes
/// into the page between <c>&lt;!-- table:NAME --&gt;</c> and <c>&lt;!-- /table:NAME --&gt;</c>.
/// </summary>
internal interface IBenchmarkSection
{
    /// <summary>Every case id this section can run under <paramref name="profile"/>.</summary>
    IEnumerable<string> CaseIds(RunProfile profile);

    /// <summary>Runs the cases <c>run.Filter</c> selects.</summary>
    void Run(BenchmarkRun run);

    /// <summary>The tables of what was measured; none for what was not.</summary>
    IEnumerable<ResultTable> Tables(BenchmarkRun run);

    /// <summary>Writes plots (PNG) of the results into <paramref name="imageDirectory"/>; most sections have none.</summary>
    void WritePlots(BenchmarkRun run, string imageDirectory) { }
}

/// <summary>
/// A generated table: <see cref="Name"/> is its marker on its <see cref="Page"/> (a page of docs/), <see cref="Markdown"/>
/// what goes between the markers. <see cref="Complete"/> is false when the filter left out cases the table draws on;
/// such a table goes to tables.md only, never over the page's complete one.
/// </summary>
internal sealed record ResultTable(string Name, string Markdown, bool Complete = true, string Page = "benchmarks.md");

/// <summary>What the sections of one run share.</summary>
internal sealed class BenchmarkRun(RunProfile profile, CaseFilter filter, TextWriter log)
{
    public RunProfile Profile { get; } = profile;
    public CaseFilter Filter { get; } = filter;
    public TextWriter Log { get; } = log;
    public DateTime StartedUtc { get; } = DateTime.UtcNow;

    /// <summary>
    /// fp32 matmul rates measured so far (GFLOP/s). Their maximum is the attainable rate: the host's speed varies
    /// during a run, so the best rate, not the first, is what the machine can do.
    /// </summary>
    public List<double> MatmulRates { get; } = [];

    public double? AttainableGflopPerSecond => MatmulRates.Count == 0 ? null : MatmulRates.Max();
}

/// <summary>Markdown tables, and the page whose marked sections they replace.</summary>
internal static class Markdown
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>A table: the first column left-aligned, the others right-aligned.</summary>
    public static string Table(IReadOnlyList<string> headers, IEnumerable<IEnumerable<string>> rows)
    {
        var md = new StringBuilder();
        md.Append("| ").AppendJoin(" | ", headers).Append(" |\n");
        md.Append("| --- |").Append(string.Concat(Enumerable.Repeat(" ---: |", headers.Count - 1))).Append('\n');
        foreach (var row in rows) md.Append("| ").AppendJoin(" | ", row).Append(" |\n");
        return md.ToString();
    }

    public static string F(double value, int decimals) => double.IsNaN(value) ? "—" : value.ToString("F" + decimals, Invariant);
    public static string Pct(double fraction) => double.IsNaN(fraction) ? "—" : (fraction * 100).ToString("F0", Invariant) + "%";
    public static string Times(double ratio) => double.IsNaN(ratio) ? "—" : ratio.ToString("F1", Invariant) + "×";
    public static string G3(double value) => value.ToString("G3", Invariant);

    /// <summary>The path of a page in the repository's docs/ folder (the repository found above the working or program folder).</summary>
    public static string DocsPage(string name)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Linformer.MLNet.sln"))) return Path.Combine(dir.FullName, "docs", name);
        throw new DirectoryNotFoundException("Cannot find the repository root (Linformer.MLNet.sln) above the current directory; name the page's file instead.");
    }

    private static string Begin(string name) => $"<!-- table:{name} -->\n";
    private static string End(string name) => $"<!-- /table:{name} -->";

    /// <summary>All tables in one file, each in its markers under a heading of its name and page.</summary>
    public static void WriteTables(string path, string title, IEnumerable<ResultTable> tables)
    {
        var md = new StringBuilder(title).Append("\n\n");
        foreach (var t in tables) md.Append($"## {t.Name} (docs/{t.Page})\n\n{Begin(t.Name)}{t.Markdown}{End(t.Name)}\n\n");
        File.WriteAllText(path, md.ToString());
    }

    /// <summary>
    /// Replaces the text between each table's markers in the page at <paramref name="path"/>, leaving the rest as it
    /// is. Writes nothing and throws when a table's pair of markers is missing or not unique.
    /// </summary>
    public static void UpdatePage(string path, IEnumerable<ResultTable> tables)
    {
        string page = File.ReadAllText(path).Replace("\r\n", "\n");
        foreach (var t in tables)
        {
            int begin = page.IndexOf(Begin(t.Name), StringComparison.Ordinal);
            int end = begin < 0 ? -1 : page.IndexOf(End(t.Name), begin, StringComparison.Ordinal);
            if (begin < 0 || end < 0 || page.IndexOf(Begin(t.Name), begin + 1, StringComparison.Ordinal) >= 0)
                throw new InvalidDataException($"{path} needs exactly one '{Begin(t.Name).TrimEnd()}' followed by '{End(t.Name)}' " +
                                               $"where the table '{t.Name}' belongs; the page was not changed.");
            begin += Begin(t.Name).Length;
            page = page[..begin] + t.Markdown + page[end..];
        }
        File.WriteAllText(path, page);
    }
}
