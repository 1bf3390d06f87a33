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
        if (flags is null) return; // a TorchSharp build without the GCC 13 dependency needs nothing
        Assert.AreEqual(!systemHasIt, (flags.Value & 0x2) != 0,
            $"weak flag on {LibTorchSharpNativeFix.RequiredVersion} should be set exactly when the system lacks it (system has it: {systemHasIt})");

        // The package cache keeps the original bytes.
        var home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(home, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (File.Exists(cached))
        {
            ushort? cachedFlags = LibTorchSharpNativeFix.ReadVersionNeedFlags(File.ReadAllBytes(cached), LibTorchSharpNativeFix.RequiredVersion);
            Assert.AreEqual((ushort)0, cachedFlags, "the NuGet cache copy must never be modified");
        }
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
