using System.Text.RegularExpressions;
using Linformer.MLNet.Tests.Examples;

namespace Linformer.MLNet.Tests.Benchmarks;

/// <summary>
/// The benchmark program's smoke mode (tiny sizes, every code path: layer cases, profile, ML.NET overhead and training
/// throughput, ONNX Runtime, float32 against bfloat16, Fit's peak memory, tables and plots) runs from its built dll,
/// writes every table its pages of docs/ have a place for, and replaces only the marked tables of a page.
/// No timing is checked.
/// </summary>
[TestClass]
public sealed class BenchmarkSmokeTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>The pages of docs/ whose marked tables the benchmark program writes.</summary>
    private static readonly string[] Pages = ["benchmarks.md", "benchmarks-precision.md", "memory.md"];

    private static string BenchmarkDll()
    {
        var dll = Path.Combine(TestPaths.RepositoryRoot, "benchmarks", "Linformer.MLNet.Benchmarks", "bin", TestPaths.Configuration, "net10.0",
            "Linformer.MLNet.Benchmarks.dll");
        Assert.IsTrue(File.Exists(dll), $"{dll} was not built");
        return dll;
    }

    private static string NewFolder(string what)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"linformer-benchmark-{what}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>The names of the marked tables in a page or tables file, in order.</summary>
    private static List<string> TableNames(string markdown)
        => Regex.Matches(markdown, @"<!-- table:([a-z0-9-]+) -->\n(?:.|\n)*?<!-- /table:\1 -->").Select(m => m.Groups[1].Value).ToList();

    [TestMethod]
    public void SmokeRunWritesEveryTableOfThePagesAndItsPlots()
    {
        var output = NewFolder("smoke");
        try
        {
            // --emulated-bf16: the precision cases run on any CPU, so that their tables are written too.
            var result = ProgramRunner.RunDotnet(BenchmarkDll(), ["--smoke", "--emulated-bf16", "--out", output], TimeSpan.FromMinutes(5));
            TestContext.WriteLine(result.Output + result.Error);
            Assert.AreEqual(0, result.ExitCode, result.Output + result.Error);

            // tables.md heads each table with its name and the page it belongs to.
            var written = Regex.Matches(File.ReadAllText(Path.Combine(output, "tables.md")), @"^## ([a-z0-9-]+) \(docs/([a-z-]+\.md)\)$", RegexOptions.Multiline)
                .Select(m => (Table: m.Groups[1].Value, Page: m.Groups[2].Value)).ToList();
            foreach (var name in Pages)
            {
                var onPage = TableNames(File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", name)));
                Assert.HasCount(onPage.Distinct().Count(), onPage, $"a table is marked twice on docs/{name}");
                CollectionAssert.AreEquivalent(onPage, written.Where(w => w.Page == name).Select(w => w.Table).ToList(),
                    $"the smoke run's tables for docs/{name} and the page's marked tables differ");
            }
            Assert.IsTrue(written.All(w => Pages.Contains(w.Page)), string.Join(", ", written));

            var page = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "benchmarks.md"));
            foreach (Match link in Regex.Matches(page, @"\]\(images/([^)]+\.png)\)"))
            {
                var png = Path.Combine(output, "images", link.Groups[1].Value);
                Assert.IsTrue(File.Exists(png), $"the page shows {link.Groups[1].Value}, which the smoke run did not write");
                CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png).Take(4).ToArray(), $"{png} is not a PNG");
            }
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [TestMethod]
    public void PrecisionCasesNeedNativeOrEmulatedBf16()
    {
        if (Linformer.MLNet.Modules.BFloat16Support.CpuHasNative)
            Assert.Inconclusive("This CPU has native bfloat16, so the precision cases run without --emulated-bf16.");
        var output = NewFolder("precision");
        try
        {
            var result = ProgramRunner.RunDotnet(BenchmarkDll(), ["precision", "--smoke", "--out", output], TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, result.ExitCode, result.Output + result.Error);
            StringAssert.Contains(result.Output, "precision: skipped, this CPU has no native bfloat16");
            Assert.IsEmpty(TableNames(File.ReadAllText(Path.Combine(output, "tables.md"))), "without native bf16 and without --emulated-bf16 the precision cases write no table");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [TestMethod]
    public void PageUpdateReplacesOnlyTheMeasuredTables()
    {
        var folder = NewFolder("page");
        try
        {
            var page = Path.Combine(folder, "page.md");
            File.WriteAllText(page, "# Page\n\nWritten by hand: 1.23×.\n\n<!-- table:fit -->\nold fit\n<!-- /table:fit -->\n\nbetween\n\n" +
                                    "<!-- table:predict -->\nold predict\n<!-- /table:predict -->\n\nend\n");
            var result = ProgramRunner.RunDotnet(BenchmarkDll(), ["fit", "--smoke", "--page", page, "--out", Path.Combine(folder, "out")], TimeSpan.FromMinutes(5));
            Assert.AreEqual(0, result.ExitCode, result.Output + result.Error);

            string text = File.ReadAllText(page);
            StringAssert.StartsWith(text, "# Page\n\nWritten by hand: 1.23×.\n\n<!-- table:fit -->\n<!-- measured by `fit --smoke` on ");
            StringAssert.Contains(text, "| `Fit` | ");
            Assert.DoesNotContain("old fit", text);
            StringAssert.EndsWith(text, "<!-- /table:fit -->\n\nbetween\n\n<!-- table:predict -->\nold predict\n<!-- /table:predict -->\n\nend\n");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void APartialRunLeavesTheTablesOfCasesItDidNotRun()
    {
        var folder = NewFolder("partial");
        try
        {
            // The real page: it has the markers of every table this run writes.
            var page = Path.Combine(folder, "benchmarks.md");
            File.Copy(Path.Combine(TestPaths.RepositoryRoot, "docs", "benchmarks.md"), page);
            string before = File.ReadAllText(page);
            var output = Path.Combine(folder, "out");
            var result = ProgramRunner.RunDotnet(BenchmarkDll(), ["layer/inference/full-fused", "--smoke", "--page", page, "--out", output], TimeSpan.FromMinutes(5));
            Assert.AreEqual(0, result.ExitCode, result.Output + result.Error);
            Assert.AreEqual(before, File.ReadAllText(page), "one model's run replaced tables of all models");
            StringAssert.Contains(result.Output, "not replaced, as the filter left out cases they show: ");
            CollectionAssert.Contains(TableNames(File.ReadAllText(Path.Combine(output, "tables.md"))), "inference-time");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void APageWithoutTheMarkersOfAMeasuredTableIsLeftAsItWas()
    {
        var folder = NewFolder("nomarker");
        try
        {
            var page = Path.Combine(folder, "page.md");
            const string before = "# Page\n\n<!-- table:predict -->\nold predict\n<!-- /table:predict -->\n";
            File.WriteAllText(page, before);
            var output = Path.Combine(folder, "out");
            var result = ProgramRunner.RunDotnet(BenchmarkDll(), ["fit", "--smoke", "--page", page, "--out", output], TimeSpan.FromMinutes(5));
            Assert.AreEqual(4, result.ExitCode, result.Output + result.Error);
            StringAssert.Contains(result.Error, "'<!-- table:fit -->'");
            Assert.AreEqual(before, File.ReadAllText(page));
            // Nothing measured is lost: the table is in tables.md.
            CollectionAssert.AreEqual(new[] { "fit" }, TableNames(File.ReadAllText(Path.Combine(output, "tables.md"))));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void CudaDeviceWithoutCudaFailsClearly()
    {
        // The test machines have no GPU and the benchmark references the CPU runtime; where CUDA works this is not the point.
        var result = ProgramRunner.RunDotnet(BenchmarkDll(), ["--smoke", "--device", "cuda", "--out", Path.Combine(Path.GetTempPath(), "unused")],
            TimeSpan.FromMinutes(2));
        if (result.ExitCode == 0) Assert.Inconclusive("CUDA is available here.");
        Assert.AreEqual(3, result.ExitCode, result.Output + result.Error);
        StringAssert.Contains(result.Error, "CUDA is not available");
    }
}
