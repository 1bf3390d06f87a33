using Linformer.MLNet.Cli;

namespace Linformer.MLNet.Tests.Modules;

[TestClass]
public sealed class SeedFixtureTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void EncoderReproducesLinformerPytorch(string caseName)
    {
        using var reference = PyTorchReferenceCase.Load(Path.Combine(TestPaths.SeedFixtures, caseName));
        double diff = reference.MaxAbsoluteDifference();
        TestContext.WriteLine($"{caseName}: max_abs_diff={diff:E3}");
        Assert.IsLessThan(Tolerances.SeedFixture, diff, $"{caseName}: max |ours - linformer-pytorch| = {diff:E3}");
    }

    public static IEnumerable<object[]> Cases => TestPaths.SeedCaseNames();
}
