using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Interop;

/// <summary>
/// What the component needs from ML.NET's host environment that ML.NET keeps internal: the environment behind a
/// catalog, the <c>MLContext</c> seed, the GPU settings and cancellation; and the log channel (public).
/// </summary>
internal static class MLNetHost
{
    private static Assembly Core => MLNetInternals.Core;

    /// <summary><c>TransformsCatalog._env</c>: the catalog extension <c>mlContext.Transforms.Linformer(...)</c> needs the environment to create the estimator with.</summary>
    internal static readonly InternalMember<FieldInfo> CatalogEnvironment = InternalMember.Field(
        () => typeof(TransformsCatalog), "_env", "TransformsCatalog._env", typeof(IHostEnvironment),
        "the environment behind mlContext.Transforms", MLNetInternals.Data);

    /// <summary><c>IHostEnvironmentInternal</c>: where an ML.NET environment keeps the <c>MLContext</c>'s seed and GPU settings.</summary>
    internal static readonly InternalMember<Type> EnvironmentInternal = InternalMember.Type(
        Core, "Microsoft.ML.Runtime.IHostEnvironmentInternal", "the MLContext's seed and GPU settings");

    /// <summary><c>IHostEnvironmentInternal.Seed</c>: <c>MLContext(seed)</c>'s seed.</summary>
    internal static readonly InternalMember<PropertyInfo> SeedProperty = InternalMember.Property(
        () => EnvironmentInternal.Value, "Seed", "IHostEnvironmentInternal.Seed", typeof(int?), "the MLContext's seed", Core);

    /// <summary><c>IHostEnvironmentInternal.GpuDeviceId</c>: <c>MLContext.GpuDeviceId</c>.</summary>
    internal static readonly InternalMember<PropertyInfo> GpuDeviceIdProperty = InternalMember.Property(
        () => EnvironmentInternal.Value, "GpuDeviceId", "IHostEnvironmentInternal.GpuDeviceId", typeof(int?), "MLContext.GpuDeviceId", Core);

    /// <summary><c>IHostEnvironmentInternal.FallbackToCpu</c>: <c>MLContext.FallbackToCpu</c>.</summary>
    internal static readonly InternalMember<PropertyInfo> FallbackToCpuProperty = InternalMember.Property(
        () => EnvironmentInternal.Value, "FallbackToCpu", "IHostEnvironmentInternal.FallbackToCpu", typeof(bool), "MLContext.FallbackToCpu", Core);

    /// <summary><c>Contracts</c>: ML.NET's internal argument and state checks.</summary>
    internal static readonly InternalMember<Type> Contracts = InternalMember.Type(
        Core, "Microsoft.ML.Runtime.Contracts", "MLContext.CancelExecution()");

    /// <summary><c>Contracts.CheckAlive(IHostEnvironment)</c>: throws once <c>MLContext.CancelExecution()</c> was called.</summary>
    internal static readonly InternalMember<MethodInfo> CheckAliveMethod = InternalMember.Method(
        () => Contracts.Value,
        MLNetInternals.Static, "CheckAlive", "Contracts.CheckAlive(IHostEnvironment)", typeof(void), () => [typeof(IHostEnvironment)],
        "MLContext.CancelExecution()", Core);

    /// <summary>The environment behind <paramref name="catalog"/> (<c>mlContext.Transforms</c>).</summary>
    public static IHostEnvironment Environment(TransformsCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return (IHostEnvironment?)CatalogEnvironment.Value.GetValue(catalog)
            ?? throw new InvalidOperationException("mlContext.Transforms has no environment (TransformsCatalog._env is null).");
    }

    /// <summary>The <c>MLContext(seed)</c> seed, or null when the context was made without one.</summary>
    public static int? Seed(IHostEnvironment env) => (int?)SeedProperty.Value.GetValue(Internal(env));

    /// <summary>
    /// The device per ML.NET's semantics: <c>GpuDeviceId</c> null → CPU; set → that CUDA device when available,
    /// else CPU if <c>FallbackToCpu</c>, else an error.
    /// </summary>
    public static Device Device(IHostEnvironment env)
    {
        var environment = Internal(env);
        var gpu = (int?)GpuDeviceIdProperty.Value.GetValue(environment);
        if (gpu is null) return CPU;
        if (cuda.is_available() && gpu.Value < cuda.device_count()) return new Device(DeviceType.CUDA, gpu.Value);
        if ((bool)FallbackToCpuProperty.Value.GetValue(environment)!) return CPU;
        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
            $"MLContext.GpuDeviceId is {gpu} but no such CUDA device is available to TorchSharp (reference a CUDA runtime package such as TorchSharp-cuda-linux or TorchSharp-cuda-windows), and MLContext.FallbackToCpu is false."));
    }

    /// <summary>Throws <see cref="OperationCanceledException"/> after <c>MLContext.CancelExecution()</c>.</summary>
    public static void CheckAlive(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        MLNetInternals.Invoke(CheckAliveMethod.Value, null, env);
    }

    /// <summary>Writes an informational message to <c>MLContext.Log</c> (public ML.NET API).</summary>
    public static void Info(IHostEnvironment env, string message)
    {
        using var channel = env.Start("Linformer");
        channel.Info(MessageSensitivity.None, message);
    }

    /// <summary>Writes a warning to <c>MLContext.Log</c> (public ML.NET API).</summary>
    public static void Warning(IHostEnvironment env, string message)
    {
        using var channel = env.Start("Linformer");
        channel.Warning(MessageSensitivity.None, message);
    }

    // Every environment ML.NET makes (MLContext's, its hosts, the one a loader receives) implements the interface;
    // anything else would silently lose the seed and the GPU settings, so it is an error.
    private static IHostEnvironment Internal(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        if (!EnvironmentInternal.Value.IsInstanceOfType(env))
            throw new InvalidOperationException(
                $"The ML.NET environment {env.GetType().FullName} does not implement Microsoft.ML.Runtime.IHostEnvironmentInternal, where " +
                $"Microsoft.ML {MLNetInternals.SupportedVersions} keeps the MLContext's seed and GPU settings. Create the estimator from an MLContext " +
                "(mlContext.Transforms.Linformer(...)).");
        return env;
    }
}
