using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Microsoft.ML;

namespace Linformer.MLNet.Persistence;

/// <summary>
/// Typed access to the members of ML.NET's <see cref="ModelSaveContext"/> and internal <c>ModelLoadContext</c>
/// that a third-party transformer needs to save itself into, and load itself from, an ordinary ML.NET model zip.
/// </summary>
/// <remarks>
/// <para>Every member of <see cref="ModelSaveContext"/> but <c>Dispose</c> is internal, and so is the whole
/// <c>ModelLoadContext</c> class, which is why a loader receives it as <see cref="object"/>. Members are reached
/// with <see cref="UnsafeAccessorAttribute"/> (bound by the JIT, no reflection) on the save side; the load context's
/// members, and ML.NET's internal structs <c>VersionInfo</c> and <c>ModelHeader</c>, are reached by reflection on the
/// types of the Microsoft.ML.Core assembly this library is bound to, so a host with several load contexts cannot bind
/// a second copy of it.</para>
/// <para>Version checks are ours, with the same rule as ML.NET's (see <see cref="ModelVersionInfo"/>): ML.NET's own
/// check names ML.NET's version, not the component's, in its "model is too new" message.</para>
/// <para>Tied to Microsoft.ML 5.0.x. If a later ML.NET renames a member, the call throws an
/// <see cref="InvalidOperationException"/> that names it.</para>
/// </remarks>
internal static class ModelContextBridge
{
    private const BindingFlags InstanceMembers = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    private static readonly Assembly MLCore = typeof(ModelSaveContext).Assembly;

    private static readonly Lazy<Type> LoadContextType = new(() => FindType("Microsoft.ML.ModelLoadContext"));

    // ---------------------------------------------------------------- save side

    /// <summary>Stamps the entry's header with the format signature, versions, loader signature and loader assembly.</summary>
    /// <param name="ctx">The context ML.NET passes to <see cref="ICanSaveModel.Save"/>.</param>
    /// <param name="version">What to stamp.</param>
    public static void SetVersionInfo(ModelSaveContext ctx, ModelVersionInfo version)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(version);
        var reflected = VersionReflection.Value;
        var versionInfo = reflected.VersionInfoConstructor.Invoke(BindingFlags.DoNotWrapExceptions, binder: null,
            [version.ModelSignature, version.VersionWritten, version.VersionReadable, version.VersionWeCanReadBack,
             version.LoaderAssemblyName, version.LoaderSignature, null], culture: null);
        reflected.SetVersionInfo.Invoke(ctx, BindingFlags.DoNotWrapExceptions, binder: null, [versionInfo], culture: null);
    }

    /// <summary>Checks that the writer stands at the start of the entry's model block (nothing written yet).</summary>
    public static void CheckAtModel(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        try { SaveContextCheckAtModel(ctx); }
        catch (MissingMemberException ex) { throw ApiChanged("ModelSaveContext.CheckAtModel()", ex); }
    }

    /// <summary>The writer of the entry's main stream (<c>Model.key</c>). Do not dispose it.</summary>
    public static BinaryWriter GetWriter(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        try { return SaveContextWriter(ctx); }
        catch (MissingMemberException ex) { throw ApiChanged("ModelSaveContext.Writer", ex); }
    }

    /// <summary>
    /// Writes a separate zip entry <paramref name="name"/> in the component's folder (the way ML.NET's own
    /// TorchSharp components store weights). The writer is closed when <paramref name="write"/> returns.
    /// </summary>
    /// <exception cref="InvalidOperationException">The context writes a single stream, not a zip (no separate entries possible).</exception>
    public static void SaveBinaryStream(ModelSaveContext ctx, string name, Action<BinaryWriter> write)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(write);
        try
        {
            if (!SaveContextInRepository(ctx))
                throw new InvalidOperationException(
                    $"Cannot save the binary entry '{name}': the model is being written to a single stream, not to a model zip.");
            SaveContextSaveBinaryStream(ctx, name, write);
        }
        catch (MissingMemberException ex) { throw ApiChanged("ModelSaveContext.SaveBinaryStream(string, Action<BinaryWriter>)", ex); }
    }

    /// <summary>Adds <paramref name="value"/> to the entry's string table and writes its index to the main stream.</summary>
    public static void SaveNonEmptyString(ModelSaveContext ctx, string value)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentException.ThrowIfNullOrEmpty(value);
        try { SaveContextSaveNonEmptyString(ctx, value); }
        catch (MissingMemberException ex) { throw ApiChanged("ModelSaveContext.SaveNonEmptyString(string)", ex); }
    }

    // ---------------------------------------------------------------- load side

    /// <summary>
    /// Checks that the reader stands at the start of the entry's model block and that the entry was written in a
    /// format <paramref name="reader"/> can read. Call it first in the loader.
    /// </summary>
    /// <param name="ctx">The <c>ModelLoadContext</c> ML.NET passes to the loader.</param>
    /// <param name="reader">The formats this code reads.</param>
    /// <returns>The format version the entry was written in, for loaders that read older formats differently.</returns>
    /// <exception cref="FormatException">The entry has another format signature, an inconsistent header, or a format version this code cannot read; the message names the versions.</exception>
    public static uint CheckAtModel(object ctx, ModelVersionInfo reader)
    {
        var loadContext = AsLoadContext(ctx);
        ArgumentNullException.ThrowIfNull(reader);
        try { LoadContextCheckAtModel(loadContext); }
        catch (MissingMemberException ex) { throw ApiChanged("ModelLoadContext.CheckAtModel()", ex); }

        var (signature, written, readable) = ReadHeader(loadContext);
        var component = $"'{reader.LoaderSignature}' (format {reader.ModelSignature})";
        if (signature != ModelVersionInfo.PackSignature(reader.ModelSignature))
            throw new FormatException(
                $"Cannot load {component}: the model entry has format signature '{ModelVersionInfo.UnpackSignature(signature)}', " +
                $"expected '{reader.ModelSignature}'. The model file is corrupt or was written by another component under the same loader name.");
        if (readable > written)
            throw new FormatException(
                $"Cannot load {component}: the model entry's header is corrupt (readable version {ModelVersionInfo.Format(readable)} " +
                $"exceeds written version {ModelVersionInfo.Format(written)}).");
        if (readable > reader.VersionWritten)
            throw new FormatException(
                $"Cannot load {component}: the model was written by a newer {reader.LoaderAssemblyName} in format version " +
                $"{ModelVersionInfo.Format(written)}, which needs a reader of format version {ModelVersionInfo.Format(readable)} or later; " +
                $"this {reader.LoaderAssemblyName} reads format versions {ModelVersionInfo.Format(reader.VersionWeCanReadBack)} to " +
                $"{ModelVersionInfo.Format(reader.VersionWritten)}. Load the model with a newer {reader.LoaderAssemblyName}.");
        if (written < reader.VersionWeCanReadBack)
            throw new FormatException(
                $"Cannot load {component}: the model was written in format version {ModelVersionInfo.Format(written)}, older than " +
                $"the oldest this {reader.LoaderAssemblyName} reads ({ModelVersionInfo.Format(reader.VersionWeCanReadBack)}). " +
                $"Load it with an older {reader.LoaderAssemblyName} and save it again, or retrain.");
        return written;
    }

    /// <summary>The reader of the entry's main stream (<c>Model.key</c>). Do not dispose it.</summary>
    public static BinaryReader GetReader(object ctx)
    {
        var loadContext = AsLoadContext(ctx);
        try { return LoadContextReader(loadContext); }
        catch (MissingMemberException ex) { throw ApiChanged("ModelLoadContext.Reader", ex); }
    }

    /// <summary>Reads the separate zip entry <paramref name="name"/> of the component's folder, if present.</summary>
    /// <returns><see langword="false"/> when the entry does not exist (<paramref name="read"/> is not called).</returns>
    public static bool TryLoadBinaryStream(object ctx, string name, Action<BinaryReader> read)
    {
        var loadContext = AsLoadContext(ctx);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(read);
        try
        {
            if (!LoadContextInRepository(loadContext))
                throw new InvalidOperationException(
                    $"Cannot load the binary entry '{name}': the model is being read from a single stream, not from a model zip.");
            return LoadContextTryLoadBinaryStream(loadContext, name, read);
        }
        catch (MissingMemberException ex) { throw ApiChanged("ModelLoadContext.TryLoadBinaryStream(string, Action<BinaryReader>)", ex); }
    }

    /// <summary>Reads the separate zip entry <paramref name="name"/> of the component's folder, which must exist.</summary>
    /// <exception cref="FormatException">The entry is missing: the model file is incomplete.</exception>
    public static void LoadBinaryStream(object ctx, string name, Action<BinaryReader> read)
    {
        if (!TryLoadBinaryStream(ctx, name, read))
            throw new FormatException($"The model has no '{name}' entry beside its component header: the model file is incomplete or corrupt.");
    }

    /// <summary>Reads a string index from the main stream and returns that non-empty string of the entry's string table.</summary>
    /// <exception cref="FormatException">The index or the string is invalid (ML.NET's message).</exception>
    public static string LoadNonEmptyString(object ctx)
    {
        var loadContext = AsLoadContext(ctx);
        try { return LoadContextLoadNonEmptyString(loadContext); }
        catch (MissingMemberException ex) { throw ApiChanged("ModelLoadContext.LoadNonEmptyString()", ex); }
    }

    /// <summary>Whether <paramref name="ctx"/> is ML.NET's <c>ModelLoadContext</c>.</summary>
    public static bool IsModelLoadContext(object? ctx) => ctx is not null && LoadContextType.Value.IsInstanceOfType(ctx);

    // ---------------------------------------------------------------- accessors

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "CheckAtModel")]
    private static extern void SaveContextCheckAtModel(ModelSaveContext ctx);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_InRepository")]
    private static extern bool SaveContextInRepository(ModelSaveContext ctx);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "Writer")]
    private static extern ref BinaryWriter SaveContextWriter(ModelSaveContext ctx);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "SaveBinaryStream")]
    private static extern void SaveContextSaveBinaryStream(ModelSaveContext ctx, string name, Action<BinaryWriter> action);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "SaveNonEmptyString")]
    private static extern void SaveContextSaveNonEmptyString(ModelSaveContext ctx, string str);

    // The load context's members are reached by reflection on the type found in the very Microsoft.ML.Core assembly
    // this library is bound to. An [UnsafeAccessorType] name would be resolved by the runtime on its own, which in
    // hosts with several load contexts (notebooks, plug-in hosts) can bind a second copy of Microsoft.ML.Core whose
    // ModelLoadContext is a different type. A model is loaded once, so reflection's cost does not matter.

    private sealed record LoadMembers(MethodInfo CheckAtModel, MethodInfo InRepository, FieldInfo Reader,
        MethodInfo TryLoadBinaryStream, MethodInfo LoadNonEmptyString);

    private static readonly Lazy<LoadMembers> LoadReflection = new(() =>
    {
        var type = LoadContextType.Value;
        MethodInfo Method(string name, params Type[] parameters) =>
            type.GetMethod(name, InstanceMembers, parameters) ?? throw ApiChanged($"ModelLoadContext.{name}", null);
        var reader = type.GetField("Reader", InstanceMembers) is { } f && f.FieldType == typeof(BinaryReader)
            ? f : throw ApiChanged("ModelLoadContext.Reader", null);
        return new LoadMembers(Method("CheckAtModel"), Method("get_InRepository"), reader,
            Method("TryLoadBinaryStream", typeof(string), typeof(Action<BinaryReader>)), Method("LoadNonEmptyString"));
    });

    private static object? Invoke(MethodInfo method, object ctx, params object?[] arguments)
    {
        try { return method.Invoke(ctx, arguments); }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
            throw;   // unreachable
        }
    }

    private static void LoadContextCheckAtModel(object ctx) => Invoke(LoadReflection.Value.CheckAtModel, ctx);

    private static bool LoadContextInRepository(object ctx) => (bool)Invoke(LoadReflection.Value.InRepository, ctx)!;

    private static BinaryReader LoadContextReader(object ctx) => (BinaryReader)LoadReflection.Value.Reader.GetValue(ctx)!;

    private static bool LoadContextTryLoadBinaryStream(object ctx, string name, Action<BinaryReader> action)
        => (bool)Invoke(LoadReflection.Value.TryLoadBinaryStream, ctx, name, action)!;

    private static string LoadContextLoadNonEmptyString(object ctx) => (string)Invoke(LoadReflection.Value.LoadNonEmptyString, ctx)!;

    // ---------------------------------------------------------------- reflection where a value type appears

    private sealed record VersionMembers(ConstructorInfo VersionInfoConstructor, MethodInfo SetVersionInfo);

    private static readonly Lazy<VersionMembers> VersionReflection = new(() =>
    {
        var versionInfo = FindType("Microsoft.ML.VersionInfo");
        // VersionInfo(string modelSignature, uint verWrittenCur, uint verReadableCur, uint verWeCanReadBack,
        //             string loaderAssemblyName, string loaderSignature, string loaderSignatureAlt)
        var ctor = versionInfo.GetConstructor(InstanceMembers, binder: null,
            [typeof(string), typeof(uint), typeof(uint), typeof(uint), typeof(string), typeof(string), typeof(string)], modifiers: null)
            ?? throw ApiChanged("VersionInfo(string, uint, uint, uint, string, string, string)", null);
        var set = typeof(ModelSaveContext).GetMethod("SetVersionInfo", InstanceMembers, binder: null, [versionInfo], modifiers: null)
            ?? throw ApiChanged("ModelSaveContext.SetVersionInfo(VersionInfo)", null);
        return new VersionMembers(ctor, set);
    });

    private sealed record HeaderMembers(FieldInfo Header, FieldInfo ModelSignature, FieldInfo VersionWritten, FieldInfo VersionReadable);

    private static readonly Lazy<HeaderMembers> HeaderReflection = new(() =>
    {
        var header = LoadContextType.Value.GetField("Header", InstanceMembers)
            ?? throw ApiChanged("ModelLoadContext.Header", null);
        FieldInfo Field(string name) => header.FieldType.GetField(name, InstanceMembers) is { } f && f.FieldType == (name == "ModelSignature" ? typeof(ulong) : typeof(uint))
            ? f
            : throw ApiChanged("ModelHeader." + name, null);
        return new HeaderMembers(header, Field("ModelSignature"), Field("ModelVerWritten"), Field("ModelVerReadable"));
    });

    private static (ulong Signature, uint Written, uint Readable) ReadHeader(object loadContext)
    {
        var members = HeaderReflection.Value;
        var header = members.Header.GetValue(loadContext);
        Debug.Assert(header is not null, "ModelHeader is a struct: GetValue boxes it.");
        return ((ulong)members.ModelSignature.GetValue(header)!,
                (uint)members.VersionWritten.GetValue(header)!,
                (uint)members.VersionReadable.GetValue(header)!);
    }

    private static object AsLoadContext(object ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (!LoadContextType.Value.IsInstanceOfType(ctx))
            throw new ArgumentException(
                $"Expected ML.NET's ModelLoadContext (the second argument ML.NET passes to a loader), got {ctx.GetType().FullName}.", nameof(ctx));
        return ctx;
    }

    private static Type FindType(string fullName)
        => MLCore.GetType(fullName, throwOnError: false) ?? throw ApiChanged(fullName, null);

    private static InvalidOperationException ApiChanged(string member, Exception? inner)
    {
        var version = MLCore.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? MLCore.GetName().Version?.ToString() ?? "unknown";
        return new InvalidOperationException(
            $"Microsoft.ML.Core {version} lacks the internal member {member} that Linformer.MLNet uses to save and load models " +
            "(built against Microsoft.ML 5.0.x). Use the Microsoft.ML version Linformer.MLNet references.", inner);
    }
}
