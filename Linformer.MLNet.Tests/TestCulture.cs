using System.Globalization;

namespace Linformer.MLNet.Tests;

/// <summary>
/// <c>LINFORMER_TEST_CULTURE=de-DE</c> runs the whole suite in that culture: .ci/run does, so that every message
/// that formats a number is checked against a culture with a decimal comma and a dot as group separator.
/// </summary>
[TestClass]
public sealed class TestCulture
{
    /// <summary>The environment variable that names the culture.</summary>
    public const string Variable = "LINFORMER_TEST_CULTURE";

    private static string? Requested => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } name ? name : null;

    /// <summary>Sets the current and default culture of every test thread, before any test runs.</summary>
    [AssemblyInitialize]
    public static void Apply(TestContext context)
    {
        if (Requested is not { } name) return;
        // predefinedOnly: an unknown name, or .NET without culture data (invariant globalization mode, no ICU), throws
        // here instead of silently giving the invariant culture's formats.
        var culture = CultureInfo.GetCultureInfo(name, predefinedOnly: true);
        CultureInfo.DefaultThreadCurrentCulture = culture;
        CultureInfo.DefaultThreadCurrentUICulture = culture;
        CultureInfo.CurrentCulture = culture;
        CultureInfo.CurrentUICulture = culture;
        context.WriteLine($"{Variable}={name}: tests run in culture {culture.Name} (1234.5 is written {1234.5.ToString("N1", culture)}).");
    }

    [TestMethod]
    public void TheRequestedCultureIsInForce()
    {
        var name = Requested;
        if (name is null)
            Assert.Inconclusive($"{Variable} is not set: the suite runs in the machine's culture ({CultureInfo.CurrentCulture.Name}); .ci/run sets de-DE.");
        var expected = CultureInfo.GetCultureInfo(name, predefinedOnly: true);
        Assert.AreEqual(expected.Name, CultureInfo.CurrentCulture.Name);
        Assert.AreEqual(expected.Name, CultureInfo.CurrentUICulture.Name);
        // Real culture data, not the invariant culture's under another name.
        Assert.AreEqual(expected.NumberFormat.NumberDecimalSeparator, CultureInfo.CurrentCulture.NumberFormat.NumberDecimalSeparator);
        if (expected.Name == "de-DE") Assert.AreEqual("1.234,5", 1234.5.ToString("N1"));
        // Threads the tests start see it too.
        string? onThread = null;
        var thread = new Thread(() => onThread = CultureInfo.CurrentCulture.Name);
        thread.Start();
        thread.Join();
        Assert.AreEqual(expected.Name, onThread);
    }
}
