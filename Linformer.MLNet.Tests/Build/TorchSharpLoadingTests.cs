using System.Text.Json;
using Linformer.MLNet.Build;
using TorchSharp;

namespace Linformer.MLNet.Tests.Build;

[TestClass]
public sealed class TorchSharpLoadingTests
{
    [TestMethod]
    public void TorchSharpInitialisesAndComputes()
    {
        using var a = torch.ones(3, 4);
        using var b = torch.ones(4, 2);
        using var c = a.matmul(b);
        Assert.AreEqual(4f, c[1, 1].item<float>());
        Assert.IsTrue(torch.TryInitializeDeviceType(DeviceType.CPU));
    }

    [TestMethod]
    public void OutputCopyIsPatchedOnlyWhenTheSystemNeedsIt_AndThePackageCacheIsUntouched()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("The native fix applies to Linux only.");
        var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.IsTrue(File.Exists(output), $"expected TorchSharp's native bridge at {output}");
        ushort? flags = LibTorchSharpNativeFix.ReadVersionNeedFlags(File.ReadAllBytes(output), LibTorchSharpNativeFix.RequiredVersion);
        bool systemHasIt = LibTorchSharpNativeFix.SystemLibStdCxxHas(LibTorchSharpNativeFix.RequiredVersion);
        // The pinned TorchSharp needs the version; one that does not makes the native fix (and this test) obsolete.
        Assert.IsNotNull(flags, $"{output} has no need for {LibTorchSharpNativeFix.RequiredVersion}: this TorchSharp build does not need the native fix any more");
        Assert.AreEqual(!systemHasIt, (flags.Value & 0x2) != 0,
            $"weak flag on {LibTorchSharpNativeFix.RequiredVersion} should be set exactly when the system lacks it (system has it: {systemHasIt})");

        // The package cache keeps the original bytes: find the copy the test project restored from (obj/project.assets.json).
        var cached = CachedNativeBridge();
        Assert.IsTrue(File.Exists(cached), $"expected the package cache's copy of the native bridge at {cached}");
        ushort? cachedFlags = LibTorchSharpNativeFix.ReadVersionNeedFlags(File.ReadAllBytes(cached), LibTorchSharpNativeFix.RequiredVersion);
        Assert.AreEqual((ushort)0, cachedFlags, $"the NuGet cache copy must never be modified: {cached}");
    }

    private static string CachedNativeBridge()
    {
        var assetsPath = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "obj", "project.assets.json");
        using var assets = JsonDocument.Parse(File.ReadAllText(assetsPath));
        var root = assets.RootElement;
        var packages = root.GetProperty("packageFolders").EnumerateObject().First().Name;
        var torchSharp = root.GetProperty("libraries").EnumerateObject()
            .Single(p => p.Name.StartsWith("TorchSharp/", StringComparison.Ordinal)).Value.GetProperty("path").GetString()!;   // torchsharp/<version>
        return Path.Combine(packages, torchSharp, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [TestMethod]
    public void PatchingIsIdempotent()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("The native fix applies to Linux only.");
        var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var copy = Path.Combine(Path.GetTempPath(), $"libLibTorchSharp-{Guid.NewGuid():N}.so");
        File.Copy(output, copy);
        try
        {
            LibTorchSharpNativeFix.MarkVersionNeedWeak(copy, LibTorchSharpNativeFix.RequiredVersion);
            var once = File.ReadAllBytes(copy);
            Assert.IsFalse(LibTorchSharpNativeFix.MarkVersionNeedWeak(copy, LibTorchSharpNativeFix.RequiredVersion));
            CollectionAssert.AreEqual(once, File.ReadAllBytes(copy));
            Assert.AreEqual((ushort)0x2, LibTorchSharpNativeFix.ReadVersionNeedFlags(once, LibTorchSharpNativeFix.RequiredVersion)!.Value & 0x2);
        }
        finally { File.Delete(copy); }
    }

    [TestMethod]
    public void NonElfInputIsRejectedClearly()
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => LibTorchSharpNativeFix.ReadVersionNeedFlags(new byte[80], "X"));
        StringAssert.Contains(ex.Message, "ELF");
    }
}
