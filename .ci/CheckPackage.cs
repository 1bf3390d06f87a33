#:property IsPackable=false
#:property GenerateDocumentationFile=false
// Checks the NuGet package `dotnet pack` produced: the metadata a package page shows, and the files a user needs.
// Usage: dotnet run .ci/CheckPackage.cs -- <path to Linformer.MLNet.*.nupkg>
using System.IO.Compression;
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
Require(dependencies.SetEquals(["Microsoft.ML", "TorchSharp"]), $"dependencies are [{string.Join(", ", dependencies)}], expected Microsoft.ML and TorchSharp only (the runtime package is the user's choice)");

Console.WriteLine($"{Path.GetFileName(args[0])}: id={Value("id")} version={Value("version")} license={metadata.Element(ns + "license")?.Value} " +
                  $"repository={repository?.Attribute("url")?.Value} files={entries.Count}");
foreach (var p in problems) Console.Error.WriteLine("package check: " + p);
Console.WriteLine(problems.Count == 0 ? "package OK" : $"package check failed: {problems.Count} problem(s)");
return problems.Count == 0 ? 0 : 1;
