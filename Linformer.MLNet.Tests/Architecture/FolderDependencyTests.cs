using System.Text.RegularExpressions;

namespace Linformer.MLNet.Tests.Architecture;

/// <summary>
/// The library's folders depend one way (docs/architecture.md): a folder may use only folders of a lower layer.
/// A reference is a <c>using Linformer.MLNet.X</c> directive, a qualified name <c>Linformer.MLNet.X.…</c>, or — from a
/// sub-folder — a type declared in a file at the library's root (C# makes the root namespace visible to every
/// sub-namespace without a using).
/// </summary>
[TestClass]
public sealed partial class FolderDependencyTests
{
    /// <summary>The layers, lowest first. A new folder must be placed here before it can be used.</summary>
    private static readonly Dictionary<string, int> Layer = new()
    {
        ["Modules"] = 0,      // TorchSharp modules only
        ["Interop"] = 0,      // every access to an ML.NET internal
        ["Model"] = 1,        // the network the transformer runs: spec, heads, pooling
        ["Data"] = 2,         // rows <-> batches, column bindings, the batch encoder
        ["Persistence"] = 3,  // model format, weights files, PyTorch import, atomic writes
        ["Onnx"] = 3,         // the ONNX export of the network (Model, Modules, and Data for what the head emits)
        ["Training"] = 4,     // the training loop, checkpoints, progress
        [RootFolder] = 5,     // the ML.NET face: catalog, estimator, transformer, options
    };

    private const string RootFolder = "(root)";

    [TestMethod]
    public void EveryFolderDependsOnlyOnLowerLayers()
    {
        var files = LibraryFiles();
        var unplaced = files.Select(f => f.Folder).Distinct().Where(f => !Layer.ContainsKey(f)).ToList();
        Assert.IsEmpty(unplaced, $"Folders without a layer in {nameof(FolderDependencyTests)}.{nameof(Layer)}: {string.Join(", ", unplaced)}.");

        var backEdges = References(files)
            .Where(r => r.From != r.To && Layer[r.To] >= Layer[r.From])
            .Select(r => $"{r.From} -> {r.To} in {r.File} ({r.Why})")
            .Distinct()
            .ToList();
        Assert.IsEmpty(backEdges, "References against the layer order:\n" + string.Join("\n", backEdges));
    }

    [TestMethod]
    public void TheScannerSeesEachKindOfReference()
    {
        var files = new List<SourceFile>
        {
            new("Training/T.cs", "Training", "namespace Linformer.MLNet.Training;"),
            new("Persistence/P.cs", "Persistence", "namespace Linformer.MLNet.Persistence;"),
            new("LinformerTransformer.cs", RootFolder, "namespace Linformer.MLNet;\ninternal sealed class LinformerTransformer { }"),
            new("Data/A.cs", "Data", "using Linformer.MLNet.Training;\nnamespace Linformer.MLNet.Data;"),
            new("Data/B.cs", "Data", "namespace Linformer.MLNet.Data;\nclass B { Linformer.MLNet.Persistence.X x; }"),
            new("Data/C.cs", "Data", "namespace Linformer.MLNet.Data;\nclass C { Type t = typeof(LinformerTransformer); }"),
            new("Data/D.cs", "Data", "namespace Linformer.MLNet.Data;\n// LinformerTransformer in a comment, and \"Linformer.MLNet.Training.X\" in a string, are not references"),
        };
        var found = References(files).Select(r => $"{r.File}:{r.To}").Order().ToList();
        CollectionAssert.AreEqual(new[] { "Data/A.cs:Training", "Data/B.cs:Persistence", "Data/C.cs:(root)" }, found);
    }

    private sealed record SourceFile(string Path, string Folder, string Text);

    private sealed record Reference(string From, string To, string File, string Why);

    private static List<SourceFile> LibraryFiles()
    {
        string library = System.IO.Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet");
        return Directory.EnumerateFiles(library, "*.cs", SearchOption.AllDirectories)
            .Select(p => System.IO.Path.GetRelativePath(library, p).Replace('\\', '/'))
            .Where(p => !p.StartsWith("bin/", StringComparison.Ordinal) && !p.StartsWith("obj/", StringComparison.Ordinal))
            .Select(p => new SourceFile(p, p.Contains('/') ? p[..p.IndexOf('/')] : RootFolder,
                File.ReadAllText(System.IO.Path.Combine(library, p))))
            .ToList();
    }

    private static IEnumerable<Reference> References(List<SourceFile> files)
    {
        var rootTypes = files.Where(f => f.Folder == RootFolder)
            .SelectMany(f => TypeDeclaration().Matches(Code(f.Text)).Select(m => m.Groups[1].Value))
            .ToHashSet();
        var folders = files.Select(f => f.Folder).ToHashSet();
        foreach (var file in files)
        {
            string code = Code(file.Text);
            foreach (Match m in QualifiedName().Matches(code))
            {
                // Linformer.MLNet.<Folder>… or Linformer.MLNet.<root type>; a root-namespace type declared in a
                // sub-folder (public vocabulary such as LinformerOutputKind) belongs to that sub-folder.
                string name = m.Groups[1].Value;
                string? target = folders.Contains(name) ? name : rootTypes.Contains(name) ? RootFolder : null;
                if (target is not null && target != file.Folder)
                    yield return new Reference(file.Folder, target, file.Path, m.Value.Trim());
            }
            if (file.Folder == RootFolder) continue;
            foreach (var type in rootTypes.Where(t => Regex.IsMatch(code, $@"\b{Regex.Escape(t)}\b")))
                yield return new Reference(file.Folder, RootFolder, file.Path, type);
        }
    }

    /// <summary>Source without comments, string literals and the namespace declaration.</summary>
    private static string Code(string text) => NamespaceDeclaration().Replace(CommentOrString().Replace(text, ""), "");

    [GeneratedRegex(@"^\s*namespace\s+[\w.]+", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/|@""(?:""""|[^""])*""|""(?:\\.|[^""\\])*""", RegexOptions.Singleline)]
    private static partial Regex CommentOrString();

    [GeneratedRegex(@"\bLinformer\.MLNet\.([A-Z]\w*)\b")]
    private static partial Regex QualifiedName();

    /// <summary>A top-level type (file-scoped namespaces: not indented).</summary>
    [GeneratedRegex(@"^(?:(?:public|internal|sealed|static|abstract|partial|readonly|file)\s+)*(?:class|record|struct|enum|interface)\s+([A-Z]\w*)", RegexOptions.Multiline)]
    private static partial Regex TypeDeclaration();
}
