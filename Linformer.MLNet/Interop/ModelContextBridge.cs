using System.Diagnostics;
using System.Reflection;
using Microsoft.ML;

namespace Linformer.MLNet.Interop;

/// <summary>
/// Typed access to the members of ML.NET's <see cref="ModelSaveContext"/> and internal <c>ModelLoadContext</c>
/// that a third-party transformer needs to save itself into, and load itself from, an ordinary ML.NET model zip.
/// </summary>
/// <remarks>
/// <para>Every member of <see cref="ModelSaveContext"/> but <c>Dispose</c> is internal, and so is the whole
/// <c>ModelLoadContext</c> class, which is why a loader receives it as <see cref="object"/>. Members are found by
/// reflection (<see cref="InternalMember{T}"/>) on the types of the very Microsoft.ML.Core assembly this library is
/// bound to: a name resolved by the runtime on its own (<c>[UnsafeAccessorType]</c>) could bind a second copy of
/// Microsoft.ML.Core in hosts with several load contexts (notebooks, plug-in hosts). A model is saved and loaded
/// once, so reflection's cost does not matter.</para>
/// <para>Version checks are ours, with the same rule as ML.NET's (see <see cref="ModelVersionInfo"/>): ML.NET's own
/// check names ML.NET's version, not the component's, in its "model is too new" message.</para>
/// <para>Written for Microsoft.ML <see cref="MLNetInternals.SupportedVersions"/>. If a later ML.NET renames a member,
/// the call throws an <see cref="InvalidOperationException"/> that names it and the supported versions.</para>
/// </remarks>
internal static class ModelContextBridge
{
    private const string Saving = "saving a model";
    private const string Loading = "loading a model";
    private static Assembly Core => MLNetInternals.Core;

    // ---------------------------------------------------------------- the internal members

    /// <summary><c>ModelSaveContext.CheckAtModel()</c>.</summary>
    internal static readonly InternalMember<MethodInfo> SaveCheckAtModel = InternalMember.Method(() => typeof(ModelSaveContext),
        MLNetInternals.Instance, "CheckAtModel", "ModelSaveContext.CheckAtModel()", typeof(void), () => [], Saving, Core);

    /// <summary><c>ModelSaveContext.InRepository</c>.</summary>
    internal static readonly InternalMember<PropertyInfo> SaveInRepository = InternalMember.Property(() => typeof(ModelSaveContext),
        "InRepository", "ModelSaveContext.InRepository", typeof(bool), Saving, Core);

    /// <summary><c>ModelSaveContext.Writer</c>.</summary>
    internal static readonly InternalMember<FieldInfo> SaveWriter = InternalMember.Field(() => typeof(ModelSaveContext),
        "Writer", "ModelSaveContext.Writer", typeof(BinaryWriter), Saving, Core);

    /// <summary><c>ModelSaveContext.SaveBinaryStream(string, Action&lt;BinaryWriter&gt;)</c>.</summary>
    internal static readonly InternalMember<MethodInfo> SaveBinaryStreamMethod = InternalMember.Method(() => typeof(ModelSaveContext),
        MLNetInternals.Instance, "SaveBinaryStream", "ModelSaveContext.SaveBinaryStream(string, Action<BinaryWriter>)", typeof(void),
        () => [typeof(string), typeof(Action<BinaryWriter>)], Saving, Core);

    /// <summary><c>ModelSaveContext.SaveNonEmptyString(string)</c>.</summary>
    internal static readonly InternalMember<MethodInfo> SaveNonEmptyStringMethod = InternalMember.Method(() => typeof(ModelSaveContext),
        MLNetInternals.Instance, "SaveNonEmptyString", "ModelSaveContext.SaveNonEmptyString(string)", typeof(void),
        () => [typeof(string)], Saving, Core);

    /// <summary>The struct <c>VersionInfo</c>.</summary>
    internal static readonly InternalMember<Type> VersionInfoType = InternalMember.Type(Core, "Microsoft.ML.VersionInfo", Saving);

    /// <summary><c>VersionInfo(string modelSignature, uint verWrittenCur, uint verReadableCur, uint verWeCanReadBack, string loaderAssemblyName, string loaderSignature, string loaderSignatureAlt)</c>.</summary>
    internal static readonly InternalMember<ConstructorInfo> VersionInfoConstructor = InternalMember.Constructor(() => VersionInfoType.Value,
        "VersionInfo(string, uint, uint, uint, string, string, string)",
        () => [typeof(string), typeof(uint), typeof(uint), typeof(uint), typeof(string), typeof(string), typeof(string)], Saving, Core);

    /// <summary><c>ModelSaveContext.SetVersionInfo(VersionInfo)</c>.</summary>
    internal static readonly InternalMember<MethodInfo> SetVersionInfoMethod = InternalMember.Method(() => typeof(ModelSaveContext),
        MLNetInternals.Instance, "SetVersionInfo", "ModelSaveContext.SetVersionInfo(VersionInfo)", typeof(void),
        () => [VersionInfoType.Value], Saving, Core);

    /// <summary>The class <c>ModelLoadContext</c>.</summary>
    internal static readonly InternalMember<Type> LoadContextType = InternalMember.Type(Core, "Microsoft.ML.ModelLoadContext", Loading);

    /// <summary><c>ModelLoadContext.CheckAtModel()</c>.</summary>
    internal static readonly InternalMember<MethodInfo> LoadCheckAtModel = InternalMember.Method(() => LoadContextType.Value,
        MLNetInternals.Instance, "CheckAtModel", "ModelLoadContext.CheckAtModel()", typeof(void), () => [], Loading, Core);

    /// <summary><c>ModelLoadContext.InRepository</c>.</summary>
    internal static readonly InternalMember<PropertyInfo> LoadInRepository = InternalMember.Property(() => LoadContextType.Value,
        "InRepository", "ModelLoadContext.InRepository", typeof(bool), Loading, Core);

    /// <summary><c>ModelLoadContext.Reader</c>.</summary>
    internal static readonly InternalMember<FieldInfo> LoadReader = InternalMember.Field(() => LoadContextType.Value,
        "Reader", "ModelLoadContext.Reader", typeof(BinaryReader), Loading, Core);

    /// <summary><c>ModelLoadContext.TryLoadBinaryStream(string, Action&lt;BinaryReader&gt;)</c>.</summary>
    internal static readonly InternalMember<MethodInfo> TryLoadBinaryStreamMethod = InternalMember.Method(() => LoadContextType.Value,
        MLNetInternals.Instance, "TryLoadBinaryStream", "ModelLoadContext.TryLoadBinaryStream(string, Action<BinaryReader>)", typeof(bool),
        () => [typeof(string), typeof(Action<BinaryReader>)], Loading, Core);

    /// <summary><c>ModelLoadContext.LoadNonEmptyString()</c>.</summary>
    internal static readonly InternalMember<MethodInfo> LoadNonEmptyStringMethod = InternalMember.Method(() => LoadContextType.Value,
        MLNetInternals.Instance, "LoadNonEmptyString", "ModelLoadContext.LoadNonEmptyString()", typeof(string), () => [], Loading, Core);

    /// <summary>The struct <c>ModelHeader</c>.</summary>
    internal static readonly InternalMember<Type> ModelHeaderType = InternalMember.Type(Core, "Microsoft.ML.ModelHeader", Loading);

    /// <summary><c>ModelLoadContext.Header</c> (a <c>ModelHeader</c>).</summary>
    internal static readonly InternalMember<FieldInfo> LoadHeader = InternalMember.Field(() => LoadContextType.Value,
        "Header", "ModelLoadContext.Header", ModelHeaderType, Loading, Core);

    /// <summary><c>ModelHeader.ModelSignature</c>.</summary>
    internal static readonly InternalMember<FieldInfo> HeaderModelSignature = InternalMember.Field(() => ModelHeaderType.Value,
        "ModelSignature", "ModelHeader.ModelSignature", typeof(ulong), Loading, Core);

    /// <summary><c>ModelHeader.ModelVerWritten</c>.</summary>
    internal static readonly InternalMember<FieldInfo> HeaderVersionWritten = InternalMember.Field(() => ModelHeaderType.Value,
        "ModelVerWritten", "ModelHeader.ModelVerWritten", typeof(uint), Loading, Core);

    /// <summary><c>ModelHeader.ModelVerReadable</c>.</summary>
    internal static readonly InternalMember<FieldInfo> HeaderVersionReadable = InternalMember.Field(() => ModelHeaderType.Value,
        "ModelVerReadable", "ModelHeader.ModelVerReadable", typeof(uint), Loading, Core);

    // ---------------------------------------------------------------- save side

    /// <summary>Stamps the entry's header with the format signature, versions, loader signature and loader assembly.</summary>
    /// <param name="ctx">The context ML.NET passes to <see cref="ICanSaveModel.Save"/>.</param>
    /// <param name="version">What to stamp.</param>
    public static void SetVersionInfo(ModelSaveContext ctx, ModelVersionInfo version)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(version);
        var versionInfo = MLNetInternals.Construct(VersionInfoConstructor.Value,
            version.ModelSignature, version.VersionWritten, version.VersionReadable, version.VersionWeCanReadBack,
            version.LoaderAssemblyName, version.LoaderSignature, null);
        MLNetInternals.Invoke(SetVersionInfoMethod.Value, ctx, versionInfo);
    }

    /// <summary>Checks that the writer stands at the start of the entry's model block (nothing written yet).</summary>
    public static void CheckAtModel(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        MLNetInternals.Invoke(SaveCheckAtModel.Value, ctx);
    }

    /// <summary>The writer of the entry's main stream (<c>Model.key</c>). Do not dispose it.</summary>
    public static BinaryWriter GetWriter(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return (BinaryWriter)SaveWriter.Value.GetValue(ctx)!;
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
        if (!(bool)SaveInRepository.Value.GetValue(ctx)!)
            throw new InvalidOperationException(
                $"Cannot save the binary entry '{name}': the model is being written to a single stream, not to a model zip.");
        MLNetInternals.Invoke(SaveBinaryStreamMethod.Value, ctx, name, write);
    }

    /// <summary>Adds <paramref name="value"/> to the entry's string table and writes its index to the main stream.</summary>
    public static void SaveNonEmptyString(ModelSaveContext ctx, string value)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentException.ThrowIfNullOrEmpty(value);
        MLNetInternals.Invoke(SaveNonEmptyStringMethod.Value, ctx, value);
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
        MLNetInternals.Invoke(LoadCheckAtModel.Value, loadContext);

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
        return (BinaryReader)LoadReader.Value.GetValue(loadContext)!;
    }

    /// <summary>Reads the separate zip entry <paramref name="name"/> of the component's folder, if present.</summary>
    /// <returns><see langword="false"/> when the entry does not exist (<paramref name="read"/> is not called).</returns>
    public static bool TryLoadBinaryStream(object ctx, string name, Action<BinaryReader> read)
    {
        var loadContext = AsLoadContext(ctx);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(read);
        if (!(bool)LoadInRepository.Value.GetValue(loadContext)!)
            throw new InvalidOperationException(
                $"Cannot load the binary entry '{name}': the model is being read from a single stream, not from a model zip.");
        return (bool)MLNetInternals.Invoke(TryLoadBinaryStreamMethod.Value, loadContext, name, read)!;
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
        return (string)MLNetInternals.Invoke(LoadNonEmptyStringMethod.Value, loadContext)!;
    }

    /// <summary>Whether <paramref name="ctx"/> is ML.NET's <c>ModelLoadContext</c>.</summary>
    public static bool IsModelLoadContext(object? ctx) => ctx is not null && LoadContextType.Value.IsInstanceOfType(ctx);

    private static (ulong Signature, uint Written, uint Readable) ReadHeader(object loadContext)
    {
        var header = LoadHeader.Value.GetValue(loadContext);
        Debug.Assert(header is not null, "ModelHeader is a struct: GetValue boxes it.");
        return ((ulong)HeaderModelSignature.Value.GetValue(header)!,
                (uint)HeaderVersionWritten.Value.GetValue(header)!,
                (uint)HeaderVersionReadable.Value.GetValue(header)!);
    }

    private static object AsLoadContext(object ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (!LoadContextType.Value.IsInstanceOfType(ctx))
            throw new ArgumentException(
                $"Expected ML.NET's ModelLoadContext (the second argument ML.NET passes to a loader), got {ctx.GetType().FullName}.", nameof(ctx));
        return ctx;
    }
}
