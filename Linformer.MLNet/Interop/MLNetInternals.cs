using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Linformer.MLNet.Interop;

/// <summary>
/// The Microsoft.ML versions this folder's accesses to ML.NET internals were written and checked against, and the
/// error every access throws when a member is missing. docs/mlnet-internals.md lists every member.
/// </summary>
/// <remarks>
/// Each internal member is an <see cref="InternalMember{T}"/> field of a class in this folder, found by reflection the
/// first time it is used. A Microsoft.ML that renamed, removed or retyped one makes that use throw an
/// <see cref="InvalidOperationException"/> naming the member and <see cref="SupportedVersions"/>; nothing falls back
/// to a default. The tests resolve every such field (MLNetInternalsTests).
/// </remarks>
internal static class MLNetInternals
{
    /// <summary>The Microsoft.ML versions the package declares (NuGet interval notation); keep equal to Directory.Packages.props.</summary>
    public const string SupportedVersions = "[5.0.1, 5.1)";

    /// <summary>The Microsoft.ML versions every member was checked against.</summary>
    public const string CheckedVersions = "5.0.1";

    /// <summary>Instance members of any visibility.</summary>
    public const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>Static members of any visibility.</summary>
    public const BindingFlags Static = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>Microsoft.ML.Core: environments, contracts, model save/load contexts, <c>SchemaShape</c>.</summary>
    public static Assembly Core => typeof(IHostEnvironment).Assembly;

    /// <summary>Microsoft.ML.Data: <c>MLContext</c> and its catalogs.</summary>
    public static Assembly Data => typeof(TransformsCatalog).Assembly;

    /// <summary>The version of <paramref name="assembly"/> as its package names it (e.g. 5.0.1).</summary>
    public static string VersionOf(Assembly assembly)
    {
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (informational is not null) return informational.Split('+')[0];
        return assembly.GetName().Version?.ToString() ?? "(unknown version)";
    }

    /// <summary>The error for an internal member the loaded Microsoft.ML lacks.</summary>
    /// <param name="member">The member as ML.NET's sources name it, e.g. <c>TransformsCatalog._env</c>.</param>
    /// <param name="purpose">What Linformer.MLNet needs it for.</param>
    /// <param name="assembly">The assembly that should declare it.</param>
    /// <param name="inner">The reflection error, if any.</param>
    public static InvalidOperationException Missing(string member, string purpose, Assembly assembly, Exception? inner = null)
        => new(string.Create(CultureInfo.InvariantCulture,
            $"Linformer.MLNet needs the internal member {member} of {assembly.GetName().Name} ({purpose}), but the loaded " +
            $"{assembly.GetName().Name} {VersionOf(assembly)} has no such member with the expected signature. " +
            $"Linformer.MLNet supports Microsoft.ML {SupportedVersions} (checked with {CheckedVersions}); use a Microsoft.ML version in that range."),
            inner);

    /// <summary>Calls <paramref name="method"/>; exceptions thrown by ML.NET arrive unwrapped.</summary>
    public static object? Invoke(MethodBase method, object? target, params object?[] arguments)
        => method.Invoke(target, BindingFlags.DoNotWrapExceptions, binder: null, arguments, culture: null);

    /// <summary>Creates an instance with <paramref name="constructor"/>; exceptions thrown by ML.NET arrive unwrapped.</summary>
    public static object Construct(ConstructorInfo constructor, params object?[] arguments)
        => constructor.Invoke(BindingFlags.DoNotWrapExceptions, binder: null, arguments, culture: null);
}

/// <summary>An internal member of ML.NET, as the tests and docs see it.</summary>
internal interface IInternalMember
{
    /// <summary>The member as ML.NET's sources name it, e.g. <c>TransformsCatalog._env</c>.</summary>
    string Name { get; }

    /// <summary>Finds the member (once); throws <see cref="MLNetInternals.Missing"/>'s error when it is not there.</summary>
    MemberInfo Resolve();
}

/// <summary>One internal member of ML.NET, found by reflection the first time it is used, and checked for its signature.</summary>
/// <typeparam name="T">The kind of member: <see cref="Type"/>, <see cref="FieldInfo"/>, <see cref="MethodInfo"/>, <see cref="PropertyInfo"/>, <see cref="ConstructorInfo"/>.</typeparam>
internal sealed class InternalMember<T> : IInternalMember where T : MemberInfo
{
    private readonly Lazy<T> member;

    /// <param name="name">The member as ML.NET's sources name it.</param>
    /// <param name="purpose">What Linformer.MLNet needs it for (for the error message).</param>
    /// <param name="assembly">The assembly that declares it.</param>
    /// <param name="find">Finds the member, or returns null when it is missing or has another signature.</param>
    public InternalMember(string name, string purpose, Assembly assembly, Func<T?> find)
    {
        Name = name;
        member = new(() =>
        {
            T? found;
            try { found = find(); }
            catch (Exception ex) when (ex is AmbiguousMatchException or TypeLoadException or FileNotFoundException or BadImageFormatException)
            {
                throw MLNetInternals.Missing(name, purpose, assembly, ex);
            }
            return found ?? throw MLNetInternals.Missing(name, purpose, assembly);
        });
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>The member; throws an <see cref="InvalidOperationException"/> naming it when the loaded Microsoft.ML lacks it.</summary>
    public T Value => member.Value;

    /// <inheritdoc/>
    public MemberInfo Resolve() => Value;
}

/// <summary>Factories for <see cref="InternalMember{T}"/> that check the signature, not just the name.</summary>
internal static class InternalMember
{
    /// <summary>A type, by full name, in <paramref name="assembly"/>.</summary>
    public static InternalMember<Type> Type(Assembly assembly, string fullName, string purpose)
        => new(fullName, purpose, assembly, () => assembly.GetType(fullName, throwOnError: false));

    /// <summary>An instance field of exactly <paramref name="fieldType"/>.</summary>
    public static InternalMember<FieldInfo> Field(Func<Type> declaringType, string name, string displayName, Type fieldType, string purpose, Assembly assembly)
        => new(displayName, purpose, assembly,
            () => declaringType().GetField(name, MLNetInternals.Instance) is { } f && f.FieldType == fieldType ? f : null);

    /// <summary>An instance field whose type is another internal member.</summary>
    public static InternalMember<FieldInfo> Field(Func<Type> declaringType, string name, string displayName, InternalMember<Type> fieldType, string purpose, Assembly assembly)
        => new(displayName, purpose, assembly,
            () => declaringType().GetField(name, MLNetInternals.Instance) is { } f && f.FieldType == fieldType.Value ? f : null);

    /// <summary>A readable instance property of exactly <paramref name="propertyType"/>.</summary>
    public static InternalMember<PropertyInfo> Property(Func<Type> declaringType, string name, string displayName, Type propertyType, string purpose, Assembly assembly)
        => new(displayName, purpose, assembly,
            () => declaringType().GetProperty(name, MLNetInternals.Instance) is { CanRead: true } p && p.PropertyType == propertyType ? p : null);

    /// <summary>A method with exactly these parameter types and return type.</summary>
    public static InternalMember<MethodInfo> Method(Func<Type> declaringType, BindingFlags binding, string name, string displayName, Type returnType,
        Func<Type[]> parameters, string purpose, Assembly assembly)
        => new(displayName, purpose, assembly,
            () => declaringType().GetMethod(name, binding, binder: null, parameters(), modifiers: null) is { } m && m.ReturnType == returnType ? m : null);

    /// <summary>An instance constructor with exactly these parameter types.</summary>
    public static InternalMember<ConstructorInfo> Constructor(Func<Type> declaringType, string displayName, Func<Type[]> parameters, string purpose, Assembly assembly)
        => new(displayName, purpose, assembly,
            () => declaringType().GetConstructor(MLNetInternals.Instance, binder: null, parameters(), modifiers: null));
}
