using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Linformer.MLNet.Interop;
using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Linformer.MLNet.Tests.Interop;

/// <summary>
/// Every ML.NET internal the library touches resolves on the referenced Microsoft.ML, is listed in
/// docs/mlnet-internals.md, and fails loudly when missing; cancellation through the internal environment works.
/// </summary>
[TestClass]
public sealed class MLNetInternalsTests
{
    private static readonly string InteropNamespace = typeof(MLNetInternals).Namespace!;

    /// <summary>Every <see cref="InternalMember{T}"/> field of every class in Linformer.MLNet/Interop.</summary>
    private static List<IInternalMember> AllInternalMembers()
        => typeof(MLNetInternals).Assembly.GetTypes()
            .Where(t => t.Namespace == InteropNamespace)
            .SelectMany(t => t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(f => typeof(IInternalMember).IsAssignableFrom(f.FieldType))
            .Select(f => (IInternalMember)f.GetValue(null)!)
            .ToList();

    [TestMethod]
    public void EveryInternalMemberResolvesOnTheReferencedMicrosoftML()
    {
        var members = AllInternalMembers();
        // Host environment (7), schema shape (1), save context (8), load context (11), woven loadable class (3),
        // ConvertToOnnx refusal (8).
        Assert.HasCount(38, members, "the Interop folder's internal members changed: update this count and docs/mlnet-internals.md");
        var failures = new List<string>();
        foreach (var member in members)
        {
            try { Assert.IsNotNull(member.Resolve(), member.Name); }
            catch (InvalidOperationException ex) { failures.Add(ex.Message); }
        }
        Assert.IsEmpty(failures, string.Join(Environment.NewLine, failures));
        Assert.AreEqual(members.Count, members.Select(m => m.Name).Distinct().Count(), "two members share a name");
    }

    [TestMethod]
    public void TheDocumentationListsEveryInternalMember()
    {
        var page = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "mlnet-internals.md"));
        var missing = AllInternalMembers().Select(m => m.Name).Where(name => !page.Contains($"`{name}`", StringComparison.Ordinal)).ToList();
        Assert.IsEmpty(missing, "docs/mlnet-internals.md does not list: " + string.Join(", ", missing));
        StringAssert.Contains(page, MLNetInternals.SupportedVersions);
    }

    [TestMethod]
    public void NoCodeOutsideTheInteropFolderBindsMLNetInternalsWithUnsafeAccessor()
    {
        var outside = typeof(MLNetInternals).Assembly.GetTypes()
            .Where(t => t.Namespace != InteropNamespace)
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
                .Where(m => m.GetCustomAttribute<UnsafeAccessorAttribute>() is not null)
                .Select(m => $"{t.FullName}.{m.Name}"))
            .ToList();
        Assert.IsEmpty(outside, "ML.NET internals are reached only from Linformer.MLNet/Interop: " + string.Join(", ", outside));
    }

    [TestMethod]
    public void AMissingMemberIsAnErrorNamingItAndTheSupportedVersions()
    {
        var missing = InternalMember.Field(() => typeof(TransformsCatalog), "_noSuchField", "TransformsCatalog._noSuchField",
            typeof(IHostEnvironment), "a test", MLNetInternals.Data);
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => missing.Value);
        StringAssert.Contains(ex.Message, "TransformsCatalog._noSuchField");
        StringAssert.Contains(ex.Message, "Microsoft.ML.Data " + MLNetInternals.VersionOf(MLNetInternals.Data));
        StringAssert.Contains(ex.Message, "Microsoft.ML [5.0.1, 5.1)");
        Assert.AreSame(ex, Assert.ThrowsExactly<InvalidOperationException>(() => missing.Value), "the failure is remembered, not retried");

        // The signature counts, not only the name: ML.NET's _env is an IHostEnvironment, not a string.
        var retyped = InternalMember.Field(() => typeof(TransformsCatalog), "_env", "TransformsCatalog._env (as string)",
            typeof(string), "a test", MLNetInternals.Data);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => retyped.Value).Message, "TransformsCatalog._env (as string)");
        var reparametrised = InternalMember.Method(() => typeof(ModelSaveContext), MLNetInternals.Instance, "SaveNonEmptyString",
            "ModelSaveContext.SaveNonEmptyString(int)", typeof(void), () => [typeof(int)], "a test", MLNetInternals.Core);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => reparametrised.Value).Message, "SaveNonEmptyString(int)");
    }

    [TestMethod]
    public void ThePackageDeclaresTheSupportedMicrosoftMLRange()
    {
        var props = XDocument.Load(Path.Combine(TestPaths.RepositoryRoot, "Directory.Packages.props"));
        var declared = props.Descendants("PackageVersion").Single(e => (string?)e.Attribute("Include") == "Microsoft.ML").Attribute("Version")!.Value;
        Assert.AreEqual(MLNetInternals.SupportedVersions, declared, "Directory.Packages.props and MLNetInternals.SupportedVersions disagree");
        Assert.IsTrue(File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md")).Contains($"`Microsoft.ML` `{MLNetInternals.SupportedVersions}`", StringComparison.Ordinal),
            $"the README's Install section names the Microsoft.ML range {MLNetInternals.SupportedVersions}");

        // The Microsoft.ML these tests run against lies in the range: at least 5.0.1, below 5.1.
        var loaded = Version.Parse(MLNetInternals.VersionOf(MLNetInternals.Core).Split('-')[0]);
        Assert.IsTrue(loaded >= new Version(5, 0, 1) && loaded < new Version(5, 1), $"Microsoft.ML.Core {loaded} is outside {MLNetInternals.SupportedVersions}");
    }

    // ML.NET 5.0.1 keeps MLContext.CancelExecution() internal; applications call it through the Microsoft.ML.Experimental
    // package's extension method MLContextExtensions.CancelExecution(this MLContext), which calls exactly this method.
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "CancelExecution")]
    private static extern void CancelExecution(MLContext mlContext);

    private sealed class OnReport(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
    {
        public void Report(LinformerTrainingProgress value) => report(value);
    }

    [TestMethod]
    public void CancelExecutionFromTheProgressCallbackStopsFit()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(32, 1));
        var steps = new List<long>();
        var options = Tiny.Options(epochs: 3);
        options.Progress = new OnReport(p =>
        {
            if (p.IsEpochEnd) return;
            steps.Add(p.Step);
            if (steps.Count == 1) CancelExecution(ml);
        });
        long live = Tiny.LiveTensors();

        Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.Linformer(options).Fit(data));

        CollectionAssert.AreEqual(new long[] { 1 }, steps.ToArray(), "no optimizer step ran after CancelExecution()");
        Assert.AreEqual(live, Tiny.LiveTensors(), "the cancelled Fit freed its tensors");
    }

    [TestMethod]
    public void CancelExecutionFromAnotherThreadStopsFit()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(32, 1));
        long lastStep = 0;
        int cancelled = 0;
        var options = Tiny.Options(epochs: 3);
        options.Progress = new OnReport(p =>
        {
            lastStep = Math.Max(lastStep, p.Step);
            if (p.Step == 2 && Interlocked.Exchange(ref cancelled, 1) == 0)
            {
                // Cancel from another thread, and let training go on only once it has.
                var canceller = new Thread(() => CancelExecution(ml));
                canceller.Start();
                canceller.Join();
            }
        });

        Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.Linformer(options).Fit(data));
        Assert.AreEqual(1, cancelled);
        Assert.AreEqual(2, lastStep, "training stopped before the step after the cancellation");
    }
}
