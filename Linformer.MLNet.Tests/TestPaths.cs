namespace Linformer.MLNet.Tests;

/// <summary>Locations of test inputs that ship with the repository.</summary>
internal static class TestPaths
{
    /// <summary>The repository root (the folder holding Linformer.MLNet.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Reference cases recorded from linformer-pytorch 0.19.3 (see Fixtures/README.md).</summary>
    public static string SeedFixtures => Path.Combine(RepositoryRoot, "Linformer.MLNet.Tests", "Fixtures", "linformer-pytorch");

    /// <summary>The build configuration the tests run in (bin/&lt;configuration&gt;/net10.0/).</summary>
    public static string Configuration { get; } =
        Path.GetFileName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)))!;

    public static IEnumerable<object[]> SeedCaseNames()
        => Directory.GetDirectories(SeedFixtures).Select(d => new object[] { Path.GetFileName(d) }).OrderBy(a => (string)a[0]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Linformer.MLNet.sln"))) return dir.FullName;
        throw new InvalidOperationException("Cannot find the repository root (Linformer.MLNet.sln) above the test binaries.");
    }
}

/// <summary>Named numeric tolerances and their origin.</summary>
internal static class Tolerances
{
    /// <summary>What a faithful float32 port of linformer-pytorch reaches on the recorded fixtures (Fixtures/README.md).</summary>
    public const double SeedFixture = 1e-4;

    /// <summary>Two float32 computations of the same function in a different order of operations (fused vs written-out attention, sliced vs padded matmuls) at these small sizes.</summary>
    public const double ReorderedFloat32 = 2e-5;
}
