using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

/// <summary>
/// Whether this machine computes bfloat16 natively, and what a request for <see cref="LinformerPrecision.BFloat16"/>
/// turns into. The answer is libtorch's own, <c>at::cpu::is_avx512_bf16_supported()</c>: the check it uses to pick
/// its AVX-512 BF16 kernels (AMX CPUs have AVX-512 BF16 too). Without native bfloat16 libtorch emulates it, slower
/// than float32 and less exact, so the ML.NET path runs float32 there and says so in the <c>MLContext</c> log.
/// </summary>
internal static class BFloat16Support
{
    // The exported C++ function, per platform's name mangling (libtorch 2.10; see the LibTorch binaries TorchSharp ships).
    private static readonly (string Library, string Symbol) Export =
        OperatingSystem.IsWindows() ? ("torch_cpu.dll", "?is_avx512_bf16_supported@cpu@at@@YA_NXZ")
        : OperatingSystem.IsMacOS() ? ("libtorch_cpu.dylib", "_ZN2at3cpu24is_avx512_bf16_supportedEv")
        : ("libtorch_cpu.so", "_ZN2at3cpu24is_avx512_bf16_supportedEv");

    private static readonly Lazy<bool> Native = new(AskLibTorch);
    private static readonly AsyncLocal<bool?> Assumed = new();

    /// <summary>True when the CPU has native bfloat16 arithmetic, per libtorch.</summary>
    /// <exception cref="NotSupportedException">libtorch does not export the check (another libtorch than 2.10).</exception>
    public static bool CpuHasNative => Assumed.Value ?? Native.Value;

    /// <summary>
    /// Makes <see cref="CpuHasNative"/> answer <paramref name="native"/> for this logical call (async flow included)
    /// until disposed, so both branches of <see cref="Resolve"/> can be exercised on any machine.
    /// </summary>
    internal static IDisposable Assume(bool native)
    {
        var previous = Assumed.Value;
        Assumed.Value = native;
        return new Restore(previous);
    }

    /// <summary>
    /// The precision to run for a request on <paramref name="device"/>: the request itself, except
    /// <see cref="LinformerPrecision.BFloat16"/> on a CPU without native bfloat16, which gives
    /// <see cref="LinformerPrecision.Float32"/> after passing a warning to <paramref name="warn"/>. CUDA devices are
    /// taken at their word (libtorch raises its own error on a GPU without bfloat16).
    /// </summary>
    public static LinformerPrecision Resolve(LinformerPrecision requested, Device device, Action<string> warn)
    {
        if (!Enum.IsDefined(requested))
            throw new ArgumentOutOfRangeException(nameof(requested), requested, string.Create(CultureInfo.InvariantCulture, $"Precision ({requested}) is not one of Float32, BFloat16."));
        if (requested != LinformerPrecision.BFloat16 || device.type != DeviceType.CPU || CpuHasNative) return requested;
        warn("Precision BFloat16 was asked for, but this CPU has no native bfloat16 arithmetic (libtorch's " +
             "at::cpu::is_avx512_bf16_supported() is false; AVX-512 BF16 or AMX is needed). Emulated bfloat16 would be slower " +
             "than float32 and less exact, so Float32 is used. To run emulated bfloat16 anyway (for example to check accuracy " +
             "before deploying to such a CPU), set transformer.Encoder.Precision.");
        return LinformerPrecision.Float32;
    }

    private static bool AskLibTorch()
    {
        InitializeDeviceType(DeviceType.CPU);   // libtorch is loaded from here on
        if (!NativeLibrary.TryLoad(Export.Library, typeof(BFloat16Support).Assembly, DllImportSearchPath.SafeDirectories, out var handle)
            && !NativeLibrary.TryLoad(Export.Library, out handle))
            throw new NotSupportedException($"Cannot find libtorch's '{Export.Library}' among the loaded native libraries to ask it whether the CPU has native bfloat16 (TorchSharp 0.107, libtorch 2.10 expected).");
        if (!NativeLibrary.TryGetExport(handle, Export.Symbol, out var function))
            throw new NotSupportedException($"libtorch's '{Export.Library}' does not export '{Export.Symbol}' (at::cpu::is_avx512_bf16_supported), which tells whether the CPU has native bfloat16 (TorchSharp 0.107, libtorch 2.10 expected).");
        unsafe { return ((delegate* unmanaged<byte>)function)() != 0; }
    }

    private sealed class Restore(bool? previous) : IDisposable
    {
        public void Dispose() => Assumed.Value = previous;
    }
}
