using System.Reflection;
using System.Reflection.Emit;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Interop;

/// <summary>
/// Makes <c>mlContext.Model.ConvertToOnnx</c> refuse a pipeline that contains a data view it cannot export, instead of
/// silently exporting only the steps after it.
/// </summary>
/// <remarks>
/// ML.NET's converter walks back from a pipeline's output through its internal <c>IDataTransform</c> interface and
/// asks each step, through the internal <c>ITransformCanSaveOnnx</c>, whether it can save itself. A data view that is
/// not an <c>IDataTransform</c> ends the walk: it becomes the graph's root, and its columns the graph's inputs, with no
/// warning. <see cref="Wrap"/> returns the view behind a type that implements both interfaces (emitted once, at run
/// time, because C# cannot name them) and whose <c>CanSaveOnnx</c> throws the caller's message. Nothing else in ML.NET
/// asks a view for these interfaces on the paths Linformer.MLNet supports (fitting, transforming, evaluating, saving
/// the transformer).
/// </remarks>
internal static class OnnxConversionGuard
{
    private const string OnnxConverterNamespace = "Microsoft.ML.Model.OnnxConverter";

    /// <summary><c>Microsoft.ML.Data.IDataTransform</c>.</summary>
    internal static readonly InternalMember<Type> DataTransform = InternalMember.Type(MLNetInternals.Data,
        "Microsoft.ML.Data.IDataTransform", "the pipeline step ConvertToOnnx walks back through");

    /// <summary><c>IDataTransform.Source</c>.</summary>
    internal static readonly InternalMember<PropertyInfo> DataTransformSource = InternalMember.Property(() => DataTransform.Value,
        "Source", "IDataTransform.Source", typeof(IDataView), "the step before a pipeline step", MLNetInternals.Data);

    /// <summary><c>Microsoft.ML.Model.OnnxConverter.OnnxContext</c>.</summary>
    internal static readonly InternalMember<Type> OnnxContext = InternalMember.Type(MLNetInternals.Data,
        OnnxConverterNamespace + ".OnnxContext", "the ONNX graph ConvertToOnnx builds");

    /// <summary><c>Microsoft.ML.Model.OnnxConverter.ICanSaveOnnx</c>.</summary>
    internal static readonly InternalMember<Type> CanSaveOnnxInterface = InternalMember.Type(MLNetInternals.Data,
        OnnxConverterNamespace + ".ICanSaveOnnx", "ConvertToOnnx asks each step whether it can be exported");

    /// <summary><c>ICanSaveOnnx.CanSaveOnnx(OnnxContext)</c>.</summary>
    internal static readonly InternalMember<MethodInfo> CanSaveOnnx = InternalMember.Method(() => CanSaveOnnxInterface.Value,
        MLNetInternals.Instance, "CanSaveOnnx", "ICanSaveOnnx.CanSaveOnnx(OnnxContext)", typeof(bool), () => [OnnxContext.Value],
        "where ConvertToOnnx is refused with a clear error", MLNetInternals.Data);

    /// <summary><c>Microsoft.ML.Model.OnnxConverter.ISaveAsOnnx</c>.</summary>
    internal static readonly InternalMember<Type> SaveAsOnnxInterface = InternalMember.Type(MLNetInternals.Data,
        OnnxConverterNamespace + ".ISaveAsOnnx", "a step that writes itself into the ONNX graph");

    /// <summary><c>ISaveAsOnnx.SaveAsOnnx(OnnxContext)</c>.</summary>
    internal static readonly InternalMember<MethodInfo> SaveAsOnnx = InternalMember.Method(() => SaveAsOnnxInterface.Value,
        MLNetInternals.Instance, "SaveAsOnnx", "ISaveAsOnnx.SaveAsOnnx(OnnxContext)", typeof(void), () => [OnnxContext.Value],
        "refused too, should ConvertToOnnx ever call it", MLNetInternals.Data);

    /// <summary><c>Microsoft.ML.Model.OnnxConverter.ITransformCanSaveOnnx</c>.</summary>
    internal static readonly InternalMember<Type> TransformCanSaveOnnx = InternalMember.Type(MLNetInternals.Data,
        OnnxConverterNamespace + ".ITransformCanSaveOnnx", "the interface ConvertToOnnx looks for on each pipeline step");

    private static readonly Lazy<ConstructorInfo> GuardedConstructor = new(EmitGuardedViewType);

    /// <summary>
    /// <paramref name="view"/> (the output of a transform applied to <paramref name="source"/>), as a pipeline step
    /// whose export by <c>mlContext.Model.ConvertToOnnx</c> throws an <see cref="InvalidOperationException"/> with
    /// <paramref name="message"/>. Everything else is served by <paramref name="view"/>.
    /// </summary>
    public static IDataView Wrap(IDataView view, IDataView source, string message)
        => (IDataView)MLNetInternals.Construct(GuardedConstructor.Value, view, source, message);

    /// <summary>
    /// Emits <c>sealed class OnnxRefusingDataView : OnnxRefusingDataViewBase, IDataTransform, ITransformCanSaveOnnx</c>,
    /// whose interface methods call the base class. The dynamic assembly skips access checks into Microsoft.ML.Data and
    /// this assembly (the interfaces and the base class are internal).
    /// </summary>
    private static ConstructorInfo EmitGuardedViewType()
    {
        var dataTransform = DataTransform.Value;
        var source = DataTransformSource.Value.GetMethod!;
        var canSave = CanSaveOnnx.Value;
        var saveAs = SaveAsOnnx.Value;
        var onnxContext = OnnxContext.Value;
        Type[] interfaces = [dataTransform, CanSaveOnnxInterface.Value, SaveAsOnnxInterface.Value, TransformCanSaveOnnx.Value];

        var assembly = AssemblyBuilder.DefineDynamicAssembly(new AssemblyName("Linformer.MLNet.OnnxConversionGuard"), AssemblyBuilderAccess.Run);
        var module = assembly.DefineDynamicModule("Linformer.MLNet.OnnxConversionGuard");
        // The runtime recognises IgnoresAccessChecksToAttribute by name in the assembly that needs it.
        var ignoresAccessChecks = DefineIgnoresAccessChecksToAttribute(module);
        foreach (var name in new[] { MLNetInternals.Data.GetName().Name!, typeof(OnnxRefusingDataViewBase).Assembly.GetName().Name! })
            assembly.SetCustomAttribute(new CustomAttributeBuilder(ignoresAccessChecks, [name]));

        var baseType = typeof(OnnxRefusingDataViewBase);
        var type = module.DefineType("Linformer.MLNet.Interop.OnnxRefusingDataView", TypeAttributes.Public | TypeAttributes.Sealed | TypeAttributes.Class, baseType);
        foreach (var i in interfaces) type.AddInterfaceImplementation(i);

        Type[] parameters = [typeof(IDataView), typeof(IDataView), typeof(string)];
        var baseConstructor = baseType.GetConstructor(MLNetInternals.Instance, binder: null, parameters, modifiers: null)!;
        var constructor = type.DefineConstructor(MethodAttributes.Public | MethodAttributes.HideBySig, CallingConventions.Standard, parameters);
        var il = constructor.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Ldarg_3);
        il.Emit(OpCodes.Call, baseConstructor);
        il.Emit(OpCodes.Ret);

        const MethodAttributes explicitImplementation = MethodAttributes.Private | MethodAttributes.Virtual | MethodAttributes.Final |
            MethodAttributes.HideBySig | MethodAttributes.NewSlot;
        var sourceGetter = type.DefineMethod("get_Source", explicitImplementation | MethodAttributes.SpecialName, typeof(IDataView), Type.EmptyTypes);
        il = sourceGetter.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, baseType.GetProperty(nameof(OnnxRefusingDataViewBase.Source))!.GetMethod!);
        il.Emit(OpCodes.Ret);
        type.DefineMethodOverride(sourceGetter, source);

        var refuse = baseType.GetMethod(nameof(OnnxRefusingDataViewBase.RefuseOnnx), MLNetInternals.Instance)!;
        var canSaveImplementation = type.DefineMethod("CanSaveOnnx", explicitImplementation, typeof(bool), [onnxContext]);
        il = canSaveImplementation.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, refuse);
        il.Emit(OpCodes.Ret);
        type.DefineMethodOverride(canSaveImplementation, canSave);

        var saveAsImplementation = type.DefineMethod("SaveAsOnnx", explicitImplementation, typeof(void), [onnxContext]);
        il = saveAsImplementation.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, refuse);
        il.Emit(OpCodes.Pop);
        il.Emit(OpCodes.Ret);
        type.DefineMethodOverride(saveAsImplementation, saveAs);

        return type.CreateType().GetConstructor(parameters)!;
    }

    /// <summary>Defines <c>System.Runtime.CompilerServices.IgnoresAccessChecksToAttribute(string)</c> in <paramref name="module"/>.</summary>
    private static ConstructorInfo DefineIgnoresAccessChecksToAttribute(ModuleBuilder module)
    {
        var attribute = module.DefineType("System.Runtime.CompilerServices.IgnoresAccessChecksToAttribute",
            TypeAttributes.Public | TypeAttributes.Sealed | TypeAttributes.Class, typeof(Attribute));
        var constructor = attribute.DefineConstructor(MethodAttributes.Public | MethodAttributes.HideBySig, CallingConventions.Standard, [typeof(string)]);
        var il = constructor.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, typeof(Attribute).GetConstructor(MLNetInternals.Instance, binder: null, Type.EmptyTypes, modifiers: null)!);
        il.Emit(OpCodes.Ret);
        return attribute.CreateType().GetConstructor([typeof(string)])!;
    }
}

/// <summary>
/// The data view behind <see cref="OnnxConversionGuard.Wrap"/>: serves another view unchanged and refuses to be
/// exported to ONNX or saved as a legacy pipeline step.
/// </summary>
internal abstract class OnnxRefusingDataViewBase : IDataView, ICanSaveModel
{
    private readonly IDataView view;
    private readonly string message;

    /// <param name="view">The view served.</param>
    /// <param name="source">The view the transform was applied to.</param>
    /// <param name="message">The error for <c>ConvertToOnnx</c>.</param>
    protected OnnxRefusingDataViewBase(IDataView view, IDataView source, string message)
    {
        this.view = view;
        Source = source;
        this.message = message;
    }

    /// <summary>The view the transform was applied to.</summary>
    public IDataView Source { get; }

    /// <summary>Throws the <c>ConvertToOnnx</c> error; returns a value only so that emitted code can return it.</summary>
    public bool RefuseOnnx() => throw new InvalidOperationException(message);

    /// <inheritdoc/>
    public bool CanShuffle => view.CanShuffle;

    /// <inheritdoc/>
    public DataViewSchema Schema => view.Schema;

    /// <inheritdoc/>
    public long? GetRowCount() => view.GetRowCount();

    /// <inheritdoc/>
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => view.GetRowCursor(columnsNeeded, rand);

    /// <inheritdoc/>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => view.GetRowCursorSet(columnsNeeded, n, rand);

    /// <summary>ML.NET saves the transformer, not its output view; a legacy pipeline save of the view is refused.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
        => throw new NotSupportedException("This data view is a transformer's output and is not saved itself; save the transformer with mlContext.Model.Save.");
}
