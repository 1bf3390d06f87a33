using System.Globalization;
using Linformer.MLNet.Benchmarks;

// Linformer encoder-layer benchmarks: see docs/benchmarks.md (written by this program) for what and how.
//   dotnet run -c Release --project benchmarks/Linformer.MLNet.Benchmarks -- <filter...> [--quick | --smoke] [--out DIR] [--update-docs]
//       [--device cpu|cuda[:i]] [--libtorch DIR] [--list]

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args is ["streaming-memory", ..]) return StreamingMemory.Run(args[1..]);   // Fit's memory against the row count (docs/memory.md)

var patterns = new List<string>();
bool quick = false, smoke = false, list = false, updateDocs = false;
string? outDirectory = null, libtorch = null;
string device = "cpu";
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--quick": quick = true; break;
        case "--smoke": smoke = true; break;
        case "--list": list = true; break;
        case "--out" when i + 1 < args.Length: outDirectory = args[++i]; break;
        case "--update-docs": updateDocs = true; break;
        case "--device" when i + 1 < args.Length: device = args[++i]; break;
        case "--libtorch" when i + 1 < args.Length: libtorch = args[++i]; break;
        case "--help" or "-h": return Usage(Console.Out, 0);
        case var a when a.StartsWith("--", StringComparison.Ordinal):
            Console.Error.WriteLine($"Unknown option {a}.");
            return Usage(Console.Error, 2);
        default: patterns.Add(args[i]); break;
    }
}
if (quick && smoke)
{
    Console.Error.WriteLine("--quick and --smoke exclude each other.");
    return Usage(Console.Error, 2);
}
var profile = smoke ? RunProfile.Smoke : quick ? RunProfile.Quick : RunProfile.Full;
if (patterns.Count == 0 && (smoke || list)) patterns.Add("*");
if (patterns.Count == 0)
{
    Console.Error.WriteLine("Give a filter: '*' for everything, or e.g. layer/inference, matmul, profile.");
    return Usage(Console.Error, 2);
}
var filter = new CaseFilter(patterns);

if (updateDocs && filter.SelectsAll)
{
    Console.Error.WriteLine("--update-docs updates the sections of a partial run; a run of '*' rewrites the whole page anyway.");
    return Usage(Console.Error, 2);
}
if (updateDocs && outDirectory is null && profile != RunProfile.Full)
{
    Console.Error.WriteLine($"--update-docs writes into docs/benchmarks.md only with the full profile; with --{profile.Name} give --out DIR.");
    return Usage(Console.Error, 2);
}

if (list)
{
    foreach (var id in CaseIds(profile).Where(filter.Matches)) Console.WriteLine(id);
    return 0;
}

// The documented page is rewritten only by the documented run (full profile, everything selected); any other run
// writes beside it in a temporary folder unless told where.
string target = outDirectory ?? (profile == RunProfile.Full && filter.SelectsAll
    ? Path.Combine(RepositoryRoot(), "docs")
    : Path.Combine(Path.GetTempPath(), $"linformer-benchmarks-{profile.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
target = Path.GetFullPath(target);

if (BenchDevice.Select(device, libtorch) is { } deviceError)
{
    Console.Error.WriteLine(deviceError);
    return 3;
}

if (updateDocs)
{
    // Only the sections this run measured are replaced; the rest of the page (and its plots) stays as it was.
    string page = Path.GetFullPath(Path.Combine(outDirectory ?? Path.Combine(RepositoryRoot(), "docs"), "benchmarks.md"));
    if (!File.Exists(page))
    {
        Console.Error.WriteLine($"--update-docs: {page} does not exist; run '*' first (or give --out DIR holding a benchmarks.md).");
        return 2;
    }
    var partial = BenchmarkRun.Execute(profile, filter, Console.Out);
    var updated = Report.Update(partial, page);
    Console.WriteLine($"report: {page} (updated: {string.Join(", ", updated)})");
    return 0;
}

var results = BenchmarkRun.Execute(profile, filter, Console.Out);
const string imageFolder = "images";
var plots = Plots.Write(results, Path.Combine(target, imageFolder));
string report = Path.Combine(target, "benchmarks.md");
Report.Write(results, report, plots, imageFolder);
Console.WriteLine($"report: {report}");
foreach (var (file, _) in plots) Console.WriteLine($"plot:   {Path.Combine(target, imageFolder, file)}");
return 0;

static IEnumerable<string> CaseIds(RunProfile profile)
{
    yield return $"matmul/{profile.MatmulSize}";
    foreach (int n in profile.SequenceLengths)
        foreach (var model in ModelSpec.All(profile))
            foreach (var mode in new[] { Mode.Inference, Mode.Training })
                yield return new LayerResult(mode, model, n, null, null, null, null).Id;
    foreach (var (model, n) in BenchmarkRun.ProfileCases(profile))
        yield return BenchmarkRun.ProfileId(model, n);
    foreach (var id in profile.MlNet.CaseIds()) yield return id;
}

static string RepositoryRoot()
{
    foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Linformer.MLNet.sln"))) return dir.FullName;
    throw new DirectoryNotFoundException("Cannot find the repository root (Linformer.MLNet.sln) above the current directory; pass --out DIR.");
}

static int Usage(TextWriter w, int code)
{
    w.WriteLine("""
        usage: dotnet run -c Release --project benchmarks/Linformer.MLNet.Benchmarks -- <filter...> [--quick | --smoke]
                   [--out DIR] [--update-docs] [--device cpu|cuda[:i]] [--libtorch DIR] [--list]

          <filter>  glob patterns over case ids, case-insensitive; a pattern also selects the cases below it:
                    '*'  everything                 layer/inference   all inference cases
                    matmul                          layer/*/linformer-k128-*/4096
                    profile                         overhead (ML.NET Transform and PredictionEngine)
                    fit (ML.NET training)           (--list prints the ids)
          --quick   N = 1024, 2048, 4096 and fewer repetitions: a few minutes on 2 cores
          --smoke   tiny sizes, every code path (report and plots too), seconds; filter defaults to '*'
          --out DIR where to write benchmarks.md and images/. Default: docs/ for the full run with '*',
                    a new temporary folder otherwise
          --update-docs  replace only the sections this (partial, full-profile) run measured in docs/benchmarks.md
                    (or DIR/benchmarks.md with --out), keeping the other sections and their run's date and machine
          --device  cpu (default) or cuda[:i]; cuda needs a CUDA libtorch (see docs/benchmarks.md, GPU); exits
                    with 3 and a message when it is not available
          --libtorch DIR  load libtorch's libraries from DIR (a libtorch download's lib/) before TorchSharp does
          --list    print the case ids the filter selects and exit
        """);
    return code;
}
