using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet;

/// <summary>
/// What the component needs from ML.NET's host environment that ML.NET keeps internal: the environment behind a
/// catalog, the <c>MLContext</c> seed, the GPU settings, cancellation, and the log channel.
/// </summary>
internal static class MLNetHost
{
    private static readonly Type? InternalEnvironment = typeof(IHostEnvironment).Assembly.GetType("Microsoft.ML.Runtime.IHostEnvironmentInternal");
    private static readonly MethodInfo? CheckAliveMethod = typeof(IHostEnvironment).Assembly.GetType("Microsoft.ML.Runtime.Contracts")
        ?.GetMethod("CheckAlive", BindingFlags.Public | BindingFlags.Static, new[] { typeof(IHostEnvironment) });

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_env")]
    private static extern ref IHostEnvironment CatalogEnvironment(TransformsCatalog catalog);

    public static IHostEnvironment Environment(TransformsCatalog catalog) => CatalogEnvironment(catalog);

    private static T? Internal<T>(IHostEnvironment env, string property)
    {
        if (InternalEnvironment is null || !InternalEnvironment.IsInstanceOfType(env)) return default;
        return (T?)InternalEnvironment.GetProperty(property)?.GetValue(env);
    }

    /// <summary>The <c>MLContext(seed)</c> seed, or null when the context was made without one.</summary>
    public static int? Seed(IHostEnvironment env) => Internal<int?>(env, "Seed");

    /// <summary>
    /// The device per ML.NET's semantics: <c>GpuDeviceId</c> null → CPU; set → that CUDA device when available,
    /// else CPU if <c>FallbackToCpu</c>, else an error.
    /// </summary>
    public static Device Device(IHostEnvironment env)
    {
        int? gpu = Internal<int?>(env, "GpuDeviceId");
        if (gpu is null) return CPU;
        if (cuda.is_available() && gpu.Value < cuda.device_count()) return new Device(DeviceType.CUDA, gpu.Value);
        if (Internal<bool>(env, "FallbackToCpu")) return CPU;
        throw new InvalidOperationException(
            $"MLContext.GpuDeviceId is {gpu} but no such CUDA device is available to TorchSharp (reference a CUDA runtime package such as TorchSharp-cuda-linux or TorchSharp-cuda-windows), and MLContext.FallbackToCpu is false.");
    }

    /// <summary>Throws <see cref="OperationCanceledException"/> after <c>MLContext.CancelExecution()</c>.</summary>
    public static void CheckAlive(IHostEnvironment env)
    {
        if (CheckAliveMethod is null) return;
        try { CheckAliveMethod.Invoke(null, new object[] { env }); }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
        }
    }

    /// <summary>Writes an informational message to <c>MLContext.Log</c>.</summary>
    public static void Info(IHostEnvironment env, string message)
    {
        using var channel = env.Start("Linformer");
        channel.Info(MessageSensitivity.None, message);
    }
}
