namespace Linformer.MLNet.Examples;

/// <summary>Finds the example data that the example projects copy next to their binaries (data/...).</summary>
public static class ExampleData
{
    /// <summary>The folder <c>data/&lt;name&gt;</c> next to the program, or <c>Examples/data/&lt;name&gt;</c> above it.</summary>
    public static string Folder(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(dir.FullName, "data", name), Path.Combine(dir.FullName, "Examples", "data", name) })
                if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"Cannot find the example data folder '{name}' next to the program or under Examples/data above it.");
    }
}
