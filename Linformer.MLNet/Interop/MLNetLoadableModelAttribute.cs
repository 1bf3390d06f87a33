using System.Reflection;

namespace Linformer.MLNet.Interop;

/// <summary>
/// Declares that <see cref="InstanceType"/> can be loaded by <c>mlContext.Model.Load</c> under
/// <see cref="LoaderSignature"/>. The build (build/Linformer.MLNet.Weaving.targets, opted into with
/// <c>&lt;LinformerWeaveLoadableClasses&gt;true&lt;/LinformerWeaveLoadableClasses&gt;</c>) turns each of these
/// into ML.NET's internal
/// <c>[assembly: LoadableClass(instanceType, null, typeof(SignatureLoadModel), displayName, loaderSignature)]</c>,
/// which C# cannot name (<see cref="WovenLoadableClass"/>). See docs/persistence.md and docs/mlnet-internals.md.
/// </summary>
/// <remarks>
/// <para>The instance type must declare its loader as a static method named <c>Create</c> that returns exactly the
/// instance type, of any visibility:</para>
/// <code>private static MyTransformer Create(IHostEnvironment env, object modelLoadContext)</code>
/// <para>(<c>object</c> stands for ML.NET's internal <c>ModelLoadContext</c>; read it through
/// <see cref="ModelContextBridge"/>). It must not also declare an instance constructor taking
/// <c>(IHostEnvironment, object)</c> or <c>(object)</c>: ML.NET would see two loaders. The weaver checks both
/// rules at build time. The assembly also needs
/// <c>[assembly: IgnoresAccessChecksTo("Microsoft.ML.Core")]</c>.</para>
/// </remarks>
/// <example><code>[assembly: MLNetLoadableModel(typeof(LinformerTransformer), "Linformer encoder", LinformerTransformer.LoaderSignature)]</code></example>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class MLNetLoadableModelAttribute : Attribute
{
    /// <summary>Declares a loadable model component.</summary>
    /// <param name="instanceType">The transformer (or other component) type; it declares the static <c>Create</c> loader.</param>
    /// <param name="displayName">A human-readable name (ML.NET's <c>userName</c>).</param>
    /// <param name="loaderSignature">The name saved in the model header; at most 24 characters, unique across loaded assemblies (case-insensitive).</param>
    public MLNetLoadableModelAttribute(Type instanceType, string displayName, string loaderSignature)
    {
        InstanceType = instanceType;
        DisplayName = displayName;
        LoaderSignature = loaderSignature;
    }

    /// <summary>The component type.</summary>
    public Type InstanceType { get; }

    /// <summary>A human-readable name.</summary>
    public string DisplayName { get; }

    /// <summary>The name saved in the model header.</summary>
    public string LoaderSignature { get; }
}

/// <summary>
/// The internal ML.NET members that the build's weaver (build/Linformer.MLNet.Weaver) writes into this assembly for
/// each <see cref="MLNetLoadableModelAttribute"/>. Nothing here calls them; they are declared so that the internals
/// test finds a Microsoft.ML that lacks them (the weaver itself refuses such a Microsoft.ML with LNW008).
/// </summary>
internal static class WovenLoadableClass
{
    /// <summary><c>LoadableClassAttribute</c>: the assembly attribute ML.NET's component catalog finds loaders by.</summary>
    internal static readonly InternalMember<Type> Attribute = InternalMember.Type(
        MLNetInternals.Core, "Microsoft.ML.LoadableClassAttribute", "loading a saved model without a registration call");

    /// <summary><c>LoadableClassAttribute(Type, Type, Type, string, params string[])</c>: the constructor the weaver writes.</summary>
    internal static readonly InternalMember<ConstructorInfo> AttributeConstructor = InternalMember.Constructor(
        () => Attribute.Value, "LoadableClassAttribute(Type, Type, Type, string, params string[])",
        () => [typeof(Type), typeof(Type), typeof(Type), typeof(string), typeof(string[])],
        "loading a saved model without a registration call", MLNetInternals.Core);

    /// <summary><c>SignatureLoadModel</c>: the signature type of a model loader.</summary>
    internal static readonly InternalMember<Type> SignatureLoadModel = InternalMember.Type(
        MLNetInternals.Core, "Microsoft.ML.SignatureLoadModel", "loading a saved model without a registration call");
}
