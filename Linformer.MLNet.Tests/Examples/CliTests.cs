using System.Globalization;
using System.Text.RegularExpressions;

namespace Linformer.MLNet.Tests.Examples;

[TestClass]
public sealed class CliTests
{
    public TestContext TestContext { get; set; } = null!;

    private static ProgramRunner.Result Cli(params string[] args)
        => ProgramRunner.RunDotnet(ProgramRunner.ExampleDll("Linformer.MLNet.Cli", "linformer-mlnet"), args, TimeSpan.FromMinutes(2));

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void VerifyReproducesEachFixtureThroughTheCommandLine(string caseName)
    {
        var result = Cli("verify", Path.Combine(TestPaths.SeedFixtures, caseName), "--tolerance", Tolerances.SeedFixture.ToString(CultureInfo.InvariantCulture));
        TestContext.WriteLine(result.Output + result.Error);
        Assert.AreEqual(0, result.ExitCode, result.Output + result.Error);
        var match = Regex.Match(result.Output, @"max_abs_diff=(\S+)");
        Assert.IsTrue(match.Success, result.Output);
        Assert.IsLessThan(Tolerances.SeedFixture, double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [TestMethod]
    public void VerifyFailsWhenTheToleranceIsNotMet()
    {
        var result = Cli("verify", Path.Combine(TestPaths.SeedFixtures, "encoder-none-relu"), "--tolerance", "0");
        Assert.AreEqual(1, result.ExitCode, result.Output + result.Error);
        StringAssert.Contains(result.Output, "FAILED");
    }

    [TestMethod]
    public void BadUsageAndBadFoldersExitWithTwoAndAClearMessage()
    {
        Assert.AreEqual(2, Cli().ExitCode);
        var missing = Cli("verify", Path.Combine(Path.GetTempPath(), "no-such-case-folder"));
        Assert.AreEqual(2, missing.ExitCode);
        StringAssert.Contains(missing.Error, "Case folder not found");
        var badTolerance = Cli("verify", TestPaths.SeedFixtures, "--tolerance", "x");
        Assert.AreEqual(2, badTolerance.ExitCode);
        StringAssert.Contains(badTolerance.Error, "--tolerance");
    }

    public static IEnumerable<object[]> Cases => TestPaths.SeedCaseNames();
}
