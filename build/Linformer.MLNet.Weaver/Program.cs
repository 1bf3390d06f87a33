// Usage: Linformer.MLNet.Weaver <assembly.dll> --references <file listing the compile references, one per line>
//
// Adds ML.NET's internal LoadableClassAttribute to <assembly.dll> (in place, with its .pdb) for each
// [assembly: Linformer.MLNet.Interop.MLNetLoadableModel(...)] marker it carries. Run by
// build/Linformer.MLNet.Weaving.targets after CoreCompile on the intermediate assembly. Errors are printed in
// MSBuild's canonical format ("file: error CODE: text") so the build shows them as errors; exit code 1 then.
using Linformer.MLNet.Weaver;

string? assemblyPath = null;
string? referencesFile = null;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--references" && i + 1 < args.Length) referencesFile = args[++i];
    else if (assemblyPath is null && !args[i].StartsWith("--", StringComparison.Ordinal)) assemblyPath = args[i];
    else return Fail("Linformer.MLNet.Weaver", WeaveException.Usage, $"Unexpected argument '{args[i]}'. Usage: Linformer.MLNet.Weaver <assembly.dll> --references <file>");
}
if (assemblyPath is null || referencesFile is null)
    return Fail("Linformer.MLNet.Weaver", WeaveException.Usage, "Usage: Linformer.MLNet.Weaver <assembly.dll> --references <file>");

try
{
    if (!File.Exists(referencesFile))
        return Fail(assemblyPath, WeaveException.Usage, $"The references file does not exist: '{referencesFile}'.");
    var references = File.ReadAllLines(referencesFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
    var result = LoadableClassWeaver.Weave(assemblyPath, references);
    foreach (var line in result.Log) Console.WriteLine("Linformer.MLNet.Weaver: " + line);
    return 0;
}
catch (WeaveException ex)
{
    return Fail(assemblyPath, ex.Code, ex.Message);
}
catch (Exception ex)
{
    return Fail(assemblyPath, WeaveException.Unexpected, $"Weaving failed unexpectedly, the assembly was left unchanged: {ex}");
}

static int Fail(string origin, string code, string message)
{
    // One line per error: MSBuild's Exec task turns "origin: error CODE: text" into a build error.
    Console.WriteLine($"{origin}: error {code}: {message.ReplaceLineEndings(" ")}");
    return 1;
}
