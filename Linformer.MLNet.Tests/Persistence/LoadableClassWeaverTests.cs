using System.Reflection;
using Linformer.MLNet.Interop;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// The build step that weaves ML.NET's <c>LoadableClass</c> attribute for every <see cref="MLNetLoadableModelAttribute"/>
/// marker, so that <c>mlContext.Model.Load</c> finds a third-party transformer with no registration call.
/// </summary>
[TestClass]
public sealed class LoadableClassWeaverTests : ModelZipTestBase
{
    [TestMethod]
    public void TestAssembly_CarriesExactlyOneWovenLoadableClass_ForTheMarker()
    {
        var woven = WovenLoadableClasses(typeof(AddConstantTransformer).Assembly)
            .Where(w => w.LoadNames.Contains(AddConstantTransformer.LoaderSignature))
            .ToList();

        Assert.HasCount(1, woven, "Weaving must add the LoadableClass once, however often the build ran.");
        Assert.AreEqual(typeof(AddConstantTransformer), woven[0].InstanceType);
        Assert.IsNull(woven[0].ArgumentType);
        Assert.AreEqual("Microsoft.ML.SignatureLoadModel", woven[0].SignatureType?.FullName);
        Assert.AreEqual("Add constant (test)", woven[0].UserName);
    }

    [TestMethod]
    public void EveryMarker_InLibraryAndTests_HasItsWovenLoadableClass()
    {
        foreach (var assembly in new[] { typeof(ModelContextBridge).Assembly, typeof(AddConstantTransformer).Assembly })
        {
            var woven = WovenLoadableClasses(assembly).ToList();
            foreach (var marker in assembly.GetCustomAttributes<MLNetLoadableModelAttribute>())
                Assert.IsTrue(woven.Any(w => w.InstanceType == marker.InstanceType && w.LoadNames.Contains(marker.LoaderSignature)),
                    $"{assembly.GetName().Name}: [MLNetLoadableModel({marker.InstanceType.Name}, '{marker.LoaderSignature}')] was not woven; " +
                    "set <LinformerWeaveLoadableClasses>true</LinformerWeaveLoadableClasses> in its project.");
        }
    }

    [TestMethod]
    public void Weaver_RunAgainOnAWovenAssembly_ChangesNothing()
    {
        var copy = Path.Combine(TempDirectory, Path.GetFileName(typeof(AddConstantTransformer).Assembly.Location));
        File.Copy(typeof(AddConstantTransformer).Assembly.Location, copy);
        var before = File.ReadAllBytes(copy);

        var run = RunDotnet(ToolPath("Linformer.Tests.Weaver"), copy, "--references", WriteReferencesFile());

        Assert.AreEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.StandardOutput, "already present", run.ToString());
        CollectionAssert.AreEqual(before, File.ReadAllBytes(copy), "An assembly that needs nothing must not be rewritten.");
    }

    [TestMethod]
    public void Weaver_MissingAssembly_FailsWithAnMSBuildError()
    {
        var run = RunDotnet(ToolPath("Linformer.Tests.Weaver"), Path.Combine(TempDirectory, "missing.dll"), "--references", WriteReferencesFile());

        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.StandardOutput, "error LNW001", run.ToString());
    }

    /// <summary>The weaver's references file: here every assembly beside the tests (the build passes the compile references).</summary>
    private string WriteReferencesFile()
    {
        var path = Path.Combine(TempDirectory, "references.txt");
        File.WriteAllLines(path, Directory.GetFiles(AppContext.BaseDirectory, "*.dll"));
        return path;
    }

    private static IEnumerable<(Type? InstanceType, Type? ArgumentType, Type? SignatureType, string? UserName, string[] LoadNames)> WovenLoadableClasses(Assembly assembly)
        // CustomAttributeData reads the attribute without instantiating ML.NET's internal type.
        => assembly.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == "Microsoft.ML.LoadableClassAttribute" && a.ConstructorArguments.Count == 5)
            .Select(a => (
                a.ConstructorArguments[0].Value as Type,
                a.ConstructorArguments[1].Value as Type,
                a.ConstructorArguments[2].Value as Type,
                a.ConstructorArguments[3].Value as string,
                ((IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[4].Value!).Select(v => (string)v.Value!).ToArray()));
}
