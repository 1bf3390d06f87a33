using System.Diagnostics;
using System.Globalization;
using Linformer.MLNet.Benchmarks;

// The benchmark program: docs/benchmarks.md says what is measured and how. It writes the result tables (and plots)
// of docs/benchmarks.md, docs/benchmarks-precision.md and docs/memory.md; the pages' text is written by people.

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args is [StreamingMemory.ChildFlag, var rows]) return StreamingMemory.Child(int.Parse(rows, CultureInfo.InvariantCulture));

var patterns = new List<string>();
bool quick = false, smoke = false, list = false, updateDocs = false, emulatedBf16 = false;
string? outDirectory = null, page = null, libtorch = null;
string device = "cpu";
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--quick": quick = true; break;
        case "--smoke": smoke = true; break;
        case "--list": list = true; break;
        case "--update-docs": updateDocs = true; break;
        case "--emulated-bf16": emulatedBf16 = true; break;
        case "--page" when i + 1 < args.Length: page = args[++i]; break;
        case "--out" when i + 1 < args.Length: outDirectory = args[++i]; break;
        case "--device" when i + 1 < args.Length: device = args[++i]; break;
        case "--libtorch" when i + 1 < args.Length: libtorch = args[++i]; break;
        case "--help" or "-h": return Usage(Console.Out, 0);
        case var a when a.StartsWith("--", StringComparison.Ordinal): return Usage(Console.Error, 2, $"Unknown option {a}.");
        default: patterns.Add(args[i]); break;
    }
}
if (quick && smoke) return Usage(Console.Error, 2, "--quick and --smoke exclude each other.");
var profile = smoke ? RunProfile.Smoke : quick ? RunProfile.Quick : RunProfile.Full;
if (updateDocs && page is not null) return Usage(Console.Error, 2, "Give --update-docs or --page FILE, not both.");
if (updateDocs && profile != RunProfile.Full)
    return Usage(Console.Error, 2, $"--update-docs writes the full profile's numbers only; with --{profile.Name} give --page FILE.");
if (patterns.Count == 0 && (smoke || list)) patterns.Add("*");
if (patterns.Count == 0) return Usage(Console.Error, 2, "Give a filter: '*' for everything, or e.g. layer/inference, matmul, profile, overhead, fit.");
var filter = new CaseFilter(patterns);
// The parts of the benchmark, in the order they run. A new part: a class implementing IBenchmarkSection, one line here.
IBenchmarkSection[] sections = [new LayerBenchmarks(), new ProfileBenchmarks(), new MlNetBenchmarks(), new OnnxBenchmarks(), new PrecisionBenchmarks(emulatedBf16), new StreamingMemory()];

if (list)
{
    foreach (var id in sections.SelectMany(s => s.CaseIds(profile)).Where(filter.Matches)) Console.WriteLine(id);
    return 0;
}
if (page is not null && !File.Exists(page)) return Usage(Console.Error, 2, $"{Path.GetFullPath(page)} does not exist.");
if (BenchDevice.Select(device, libtorch) is { } deviceError)
{
    Console.Error.WriteLine(deviceError);
    return 3;
}

string output = Path.GetFullPath(outDirectory ?? Path.Combine(Path.GetTempPath(), $"linformer-benchmarks-{profile.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
string command = $"{string.Join(" ", patterns.Select(p => p.Contains('*') ? $"'{p}'" : p))}{(profile == RunProfile.Full ? "" : $" --{profile.Name}")}" +
                 (emulatedBf16 ? " --emulated-bf16" : "");
var run = new BenchmarkRun(profile, filter, Console.Out);
var clock = Stopwatch.StartNew();
Console.WriteLine($"{command}: profile {profile.Name}, C={profile.Channels}, H={profile.Heads}, FF={profile.FeedForward}, B={profile.Batch}, " +
                  $"N={string.Join(",", profile.SequenceLengths)}; {MachineInfo.Describe()}; load average {MachineInfo.LoadAverage()}");
foreach (var section in sections) section.Run(run);
Console.WriteLine($"done in {clock.Elapsed.TotalMinutes:F1} min; load average {MachineInfo.LoadAverage()}");

// Every table of the run goes into tables.md first, so that nothing measured is lost if the page cannot be updated.
string provenance = $"<!-- measured by `{command}` on {run.StartedUtc:yyyy-MM-dd HH:mm} UTC, {BenchDevice.Describe} -->\n";
var tables = sections.SelectMany(s => s.Tables(run)).Select(t => t with { Markdown = provenance + t.Markdown }).ToList();
Directory.CreateDirectory(output);
Markdown.WriteTables(Path.Combine(output, "tables.md"), $"# Benchmark tables\n\n`{command}` on {run.StartedUtc:yyyy-MM-dd HH:mm} (UTC), " +
    $"{clock.Elapsed.TotalMinutes:F1} min; {MachineInfo.Describe()}; device {BenchDevice.Describe}.", tables);
Console.WriteLine($"tables: {Path.Combine(output, "tables.md")}");
int status = 0;
// --page FILE takes every table; --update-docs sends each to its page in docs/.
foreach (var onPage in tables.Where(t => t.Complete && (updateDocs || page is not null)).GroupBy(t => page ?? Markdown.DocsPage(t.Page)))
{
    try
    {
        Markdown.UpdatePage(onPage.Key, onPage);
        Console.WriteLine($"page:   {Path.GetFullPath(onPage.Key)} ({string.Join(", ", onPage.Select(t => t.Name))})");
    }
    catch (InvalidDataException e)
    {
        Console.Error.WriteLine($"{e.Message} The tables are in {Path.Combine(output, "tables.md")}.");
        status = 4;
    }
}
if (tables.Any(t => !t.Complete))
    Console.WriteLine($"        not replaced, as the filter left out cases they show: {string.Join(", ", tables.Where(t => !t.Complete).Select(t => t.Name))}");
string images = Path.Combine(status != 0 || (page is null && !updateDocs) ? output : Path.GetDirectoryName(Path.GetFullPath(page ?? Markdown.DocsPage("benchmarks.md")))!, "images");
foreach (var section in sections) section.WritePlots(run, images);
Console.WriteLine($"plots:  {images}");
return status;

static int Usage(TextWriter w, int code, string? error = null)
{
    if (error is not null) w.WriteLine(error);
    w.WriteLine("""
        usage: dotnet run -c Release --project benchmarks/Linformer.MLNet.Benchmarks -- <filter...> [--quick | --smoke]
                   [--out DIR] [--update-docs | --page FILE] [--device cpu|cuda[:i]] [--libtorch DIR] [--emulated-bf16] [--list]
        <filter> is glob patterns over case ids ('*' for everything; --list prints them). docs/benchmarks.md says
        what each option does.
        """);
    return code;
}
