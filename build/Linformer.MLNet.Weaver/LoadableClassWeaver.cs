using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Linformer.MLNet.Weaver;

/// <summary>A weaving failure with its MSBuild error code; the assembly is left unchanged.</summary>
internal sealed class WeaveException(string code, string message) : Exception(message)
{
    public const string Usage = "LNW001";
    public const string MissingAccessCheckOptOut = "LNW002";
    public const string InvalidMarker = "LNW003";
    public const string InvalidInstanceType = "LNW004";
    public const string MissingLoader = "LNW005";
    public const string AmbiguousLoader = "LNW006";
    public const string DuplicateLoaderSignature = "LNW007";
    public const string MLNetChanged = "LNW008";
    public const string Unsupported = "LNW009";
    public const string Unexpected = "LNW010";
    public const string MissingMLNet = "LNW011";

    /// <summary>The MSBuild error code (LNW0xx).</summary>
    public string Code { get; } = code;
}

/// <summary>What one weaving run did.</summary>
internal sealed record WeaveResult(int Added, int AlreadyPresent, IReadOnlyList<string> Log);

/// <summary>
/// Turns each <c>[assembly: MLNetLoadableModel(typeof(T), displayName, loaderSignature)]</c> of an assembly into
/// ML.NET's internal <c>[assembly: LoadableClass(typeof(T), null, typeof(SignatureLoadModel), displayName,
/// loaderSignature)]</c>. That constructor is <c>(Type instanceType, Type argumentType, Type signatureType,
/// string userName, params string[] loadNames)</c>; ML.NET then uses <c>instanceType</c> as the loader type too.
/// </summary>
/// <remarks>
/// Idempotent: a LoadableClass for the same type and loader signature is not added twice, and an assembly that
/// needs nothing is not rewritten (its timestamp stays, so incremental builds stay incremental). The rewrite goes
/// to temporary files that replace the assembly and its .pdb only when complete.
/// </remarks>
internal static class LoadableClassWeaver
{
    public const string MarkerAttribute = "Linformer.MLNet.Interop.MLNetLoadableModelAttribute";
    public const string LoadableClassAttribute = "Microsoft.ML.LoadableClassAttribute";
    public const string SignatureLoadModel = "Microsoft.ML.SignatureLoadModel";
    private const string IgnoresAccessChecksToAttribute = "System.Runtime.CompilerServices.IgnoresAccessChecksToAttribute";
    private const string MLCoreAssembly = "Microsoft.ML.Core";
    private const string HostEnvironment = "Microsoft.ML.Runtime.IHostEnvironment";
    private const int MaxLoaderSignatureLength = 24; // ModelHeader keeps 3 x 8 bytes for it

    /// <param name="assemblyPath">The assembly to weave in place (its .pdb beside it is rewritten too).</param>
    /// <param name="referencePaths">The assembly's compile references; Cecil resolves types through them when writing, and Microsoft.ML.Core.dll must be among them.</param>
    public static WeaveResult Weave(string assemblyPath, IReadOnlyCollection<string> referencePaths)
    {
        if (!File.Exists(assemblyPath)) throw new WeaveException(WeaveException.Usage, $"The assembly to weave does not exist: '{assemblyPath}'.");

        var log = new List<string>();
        var pdbPath = Path.ChangeExtension(assemblyPath, ".pdb");
        var hasPdbFile = File.Exists(pdbPath);

        using var resolver = new ReferenceResolver(referencePaths);

        // Read everything into memory: the files are replaced below and must not stay open.
        using var pdbStream = hasPdbFile ? new MemoryStream(File.ReadAllBytes(pdbPath)) : null;
        var readerParameters = new ReaderParameters(ReadingMode.Immediate)
        {
            InMemory = true,
            AssemblyResolver = resolver,
            ReadSymbols = true,
            SymbolStream = pdbStream,
            SymbolReaderProvider = new DefaultSymbolReaderProvider(throwIfNoSymbol: false),
        };
        using var module = ModuleDefinition.ReadModule(assemblyPath, readerParameters);
        var assembly = module.Assembly;

        var markers = assembly.CustomAttributes.Where(a => a.AttributeType.FullName == MarkerAttribute).ToList();
        if (markers.Count == 0)
        {
            log.Add($"{module.Name}: no [MLNetLoadableModel] markers, nothing to weave.");
            return new WeaveResult(0, 0, log);
        }

        if ((module.Attributes & ModuleAttributes.StrongNameSigned) != 0)
            throw new WeaveException(WeaveException.Unsupported,
                $"{module.Name} is strong-name signed; rewriting it would invalidate the signature and the weaver does not re-sign. Build it unsigned or sign after weaving.");

        if (!assembly.CustomAttributes.Any(a => a.AttributeType.FullName == IgnoresAccessChecksToAttribute
                && a.ConstructorArguments.Count == 1 && a.ConstructorArguments[0].Value as string == MLCoreAssembly))
            throw new WeaveException(WeaveException.MissingAccessCheckOptOut,
                $"{module.Name} declares [MLNetLoadableModel] but lacks [assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo(\"{MLCoreAssembly}\")]. " +
                "Without it the runtime cannot create ML.NET's internal LoadableClassAttribute and ML.NET silently finds no loader.");

        var mlCorePath = referencePaths.FirstOrDefault(p => string.Equals(Path.GetFileNameWithoutExtension(p), MLCoreAssembly, StringComparison.OrdinalIgnoreCase))
            ?? throw new WeaveException(WeaveException.MissingMLNet,
                $"{module.Name} declares [MLNetLoadableModel] but does not reference {MLCoreAssembly} (add a reference to Microsoft.ML or Linformer.MLNet).");
        var mlNet = ReadMLNetContract(mlCorePath);
        var mlCoreReference = module.AssemblyReferences.FirstOrDefault(r => r.Name == MLCoreAssembly);
        if (mlCoreReference is null)
        {
            mlCoreReference = new AssemblyNameReference(mlNet.AssemblyName.Name, mlNet.AssemblyName.Version)
            {
                PublicKeyToken = mlNet.AssemblyName.PublicKeyToken,
                Culture = mlNet.AssemblyName.Culture,
            };
            module.AssemblyReferences.Add(mlCoreReference);
        }

        var existing = ExistingLoadableClasses(assembly);
        var seenSignatures = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var toAdd = new List<(TypeDefinition Type, string DisplayName, string LoaderSignature)>();
        var alreadyPresent = 0;
        foreach (var marker in markers)
        {
            var (type, displayName, loaderSignature) = ValidateMarker(module, marker);
            if (seenSignatures.TryGetValue(loaderSignature, out var other))
                throw new WeaveException(WeaveException.DuplicateLoaderSignature,
                    $"Loader signature '{loaderSignature}' is declared for both {other} and {type.FullName}; ML.NET maps names case-insensitively and would refuse to load the assembly.");
            seenSignatures.Add(loaderSignature, type.FullName);

            var match = existing.FirstOrDefault(e => e.LoadNames.Contains(loaderSignature, StringComparer.OrdinalIgnoreCase));
            if (match.InstanceType is not null)
            {
                if (match.InstanceType != type.FullName)
                    throw new WeaveException(WeaveException.DuplicateLoaderSignature,
                        $"Loader signature '{loaderSignature}' of {type.FullName} is already taken by a LoadableClass for {match.InstanceType}.");
                alreadyPresent++;
                continue;
            }
            toAdd.Add((type, displayName, loaderSignature));
        }

        if (toAdd.Count == 0)
        {
            log.Add($"{module.Name}: all {alreadyPresent} LoadableClass attribute(s) already present, assembly unchanged.");
            return new WeaveResult(0, alreadyPresent, log);
        }

        var ctor = LoadableClassConstructor(module, mlCoreReference);
        var systemType = SystemType(module);
        var signatureType = new TypeReference("Microsoft.ML", "SignatureLoadModel", module, mlCoreReference);
        foreach (var (type, displayName, loaderSignature) in toAdd)
        {
            var attribute = new CustomAttribute(ctor);
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(systemType, type));
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(systemType, null)); // no arguments class
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(systemType, signatureType));
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, displayName));
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(new ArrayType(module.TypeSystem.String),
                new[] { new CustomAttributeArgument(module.TypeSystem.String, loaderSignature) }));
            assembly.CustomAttributes.Add(attribute);
            log.Add($"{module.Name}: added LoadableClass({type.FullName}, null, SignatureLoadModel, \"{displayName}\", \"{loaderSignature}\").");
        }

        Write(module, assemblyPath, hasPdbFile ? pdbPath : null);
        return new WeaveResult(toAdd.Count, alreadyPresent, log);
    }

    private sealed record MLNetContract(AssemblyNameDefinition AssemblyName);

    /// <summary>Checks that Microsoft.ML.Core still has the constructor and signature type we emit references to.</summary>
    private static MLNetContract ReadMLNetContract(string mlCorePath)
    {
        using var mlCore = ModuleDefinition.ReadModule(mlCorePath, new ReaderParameters(ReadingMode.Deferred) { InMemory = true });
        var attributeType = mlCore.GetType(LoadableClassAttribute);
        var hasConstructor = attributeType?.Methods.Any(m => m.IsConstructor && !m.IsStatic && m.Parameters.Select(p => p.ParameterType.FullName)
            .SequenceEqual(["System.Type", "System.Type", "System.Type", "System.String", "System.String[]"])) ?? false;
        if (!hasConstructor || mlCore.GetType(SignatureLoadModel) is null)
            throw new WeaveException(WeaveException.MLNetChanged,
                $"{mlCorePath} ({mlCore.Assembly.Name.Version}) lacks {LoadableClassAttribute}(Type, Type, Type, string, string[]) or {SignatureLoadModel}; " +
                "Linformer.MLNet supports Microsoft.ML [5.0.1, 5.1) (docs/mlnet-internals.md).");
        return new MLNetContract(mlCore.Assembly.Name);
    }

    private static (TypeDefinition Type, string DisplayName, string LoaderSignature) ValidateMarker(ModuleDefinition module, CustomAttribute marker)
    {
        var args = marker.ConstructorArguments;
        if (args.Count != 3 || args[0].Value is not TypeReference typeReference || args[1].Value is not string displayName || args[2].Value is not string loaderSignature)
            throw new WeaveException(WeaveException.InvalidMarker,
                "[MLNetLoadableModel] needs (Type instanceType, string displayName, string loaderSignature), none of them null.");

        if (string.IsNullOrWhiteSpace(loaderSignature) || loaderSignature.Length > MaxLoaderSignatureLength || loaderSignature.Any(c => c > '\u00FF'))
            throw new WeaveException(WeaveException.InvalidMarker,
                $"Loader signature '{loaderSignature}' of {typeReference.FullName} ({loaderSignature.Length} characters) must be 1 to {MaxLoaderSignatureLength} characters below U+0100: ML.NET stores it in 24 bytes of the model header.");

        var type = typeReference.Resolve();
        if (type is null || type.Module != module)
            throw new WeaveException(WeaveException.InvalidInstanceType,
                $"[MLNetLoadableModel] type {typeReference.FullName} must be declared in {module.Assembly.Name.Name} itself.");
        if (type.HasGenericParameters || type.IsInterface || type.IsAbstract)
            throw new WeaveException(WeaveException.InvalidInstanceType,
                $"[MLNetLoadableModel] type {type.FullName} must be a concrete, non-generic class or struct.");

        // ML.NET (ComponentCatalog.TryGetIniters / FindCreateMethod for SignatureLoadModel(ModelLoadContext ctx)) looks for
        // a static method "Create" declared on the type, returning exactly the type, whose parameters accept
        // (ModelLoadContext) or (IHostEnvironment, ModelLoadContext); and for constructors of the same shapes.
        var creates = type.Methods.Where(m => m.Name == "Create" && m.IsStatic && !m.HasGenericParameters && IsLoaderShape(m)).ToList();
        if (creates.Count == 0)
            throw new WeaveException(WeaveException.MissingLoader,
                $"{type.FullName} has no loader for ML.NET. Declare 'static {type.Name} Create(IHostEnvironment env, object ctx)' " +
                "(any visibility; object stands for ML.NET's internal ModelLoadContext) on the type itself.");
        var wrongReturn = creates.FirstOrDefault(m => m.ReturnType.FullName != type.FullName);
        if (wrongReturn is not null)
            throw new WeaveException(WeaveException.MissingLoader,
                $"{type.FullName}.Create returns {wrongReturn.ReturnType.FullName}; ML.NET only accepts a loader that returns exactly {type.FullName}.");
        var ctor = type.Methods.FirstOrDefault(m => m.IsConstructor && !m.IsStatic && IsLoaderShape(m));
        if (ctor is not null)
            throw new WeaveException(WeaveException.AmbiguousLoader,
                $"{type.FullName} has both a static Create loader and the constructor {ctor.FullName}, which ML.NET would also take for a loader " +
                "(and refuse if both have the same visibility). Change that constructor's parameters.");

        return (type, displayName, loaderSignature);
    }

    private static bool IsLoaderShape(MethodDefinition method)
    {
        var p = method.Parameters;
        return p.Count switch
        {
            1 => AcceptsLoadContext(p[0].ParameterType),
            2 => p[0].ParameterType.FullName is HostEnvironment or "System.Object" && AcceptsLoadContext(p[1].ParameterType),
            _ => false,
        };
    }

    // Types a ModelLoadContext argument binds to.
    private static bool AcceptsLoadContext(TypeReference type)
        => type.FullName is "System.Object" or "System.IDisposable" or "Microsoft.ML.ModelLoadContext";

    private static List<(string? InstanceType, string[] LoadNames)> ExistingLoadableClasses(AssemblyDefinition assembly)
        => assembly.CustomAttributes
            .Where(a => a.AttributeType.FullName == LoadableClassAttribute)
            .Select(a => (
                InstanceType: a.ConstructorArguments.Select(c => c.Value).OfType<TypeReference>().FirstOrDefault()?.FullName,
                LoadNames: a.ConstructorArguments.Count > 0 && a.ConstructorArguments[^1].Value is CustomAttributeArgument[] names
                    ? names.Select(n => n.Value as string).OfType<string>().ToArray()
                    : []))
            .ToList();

    private static MethodReference LoadableClassConstructor(ModuleDefinition module, AssemblyNameReference mlCore)
    {
        // Built by hand rather than imported from Microsoft.ML.Core (a netstandard2.0 assembly) so that System.Type
        // and System.String resolve through this module's own core library reference.
        var declaringType = new TypeReference("Microsoft.ML", "LoadableClassAttribute", module, mlCore);
        var ctor = new MethodReference(".ctor", module.TypeSystem.Void, declaringType) { HasThis = true };
        var systemType = SystemType(module);
        ctor.Parameters.Add(new ParameterDefinition(systemType));
        ctor.Parameters.Add(new ParameterDefinition(systemType));
        ctor.Parameters.Add(new ParameterDefinition(systemType));
        ctor.Parameters.Add(new ParameterDefinition(module.TypeSystem.String));
        ctor.Parameters.Add(new ParameterDefinition(new ArrayType(module.TypeSystem.String)));
        return ctor;
    }

    private static TypeReference SystemType(ModuleDefinition module)
        => new("System", "Type", module, module.TypeSystem.CoreLibrary);

    private static void Write(ModuleDefinition module, string assemblyPath, string? pdbPath)
    {
        // A .pdb file next to the assembly is rewritten with it; an embedded one travels inside the assembly.
        var temporaryAssembly = assemblyPath + ".weaving";
        var temporaryPdb = pdbPath is not null && module.HasSymbols ? pdbPath + ".weaving" : null;
        try
        {
            using (var pdbOut = temporaryPdb is null ? null : File.Create(temporaryPdb))
            {
                var writerParameters = new WriterParameters
                {
                    DeterministicMvid = true,
                    WriteSymbols = module.HasSymbols,
                    SymbolStream = pdbOut,
                };
                if (module.HasSymbols) writerParameters.SymbolWriterProvider = module.SymbolReader.GetWriterProvider();
                module.Write(temporaryAssembly, writerParameters);
            }
            File.Move(temporaryAssembly, assemblyPath, overwrite: true);
            if (temporaryPdb is not null && pdbPath is not null) File.Move(temporaryPdb, pdbPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporaryAssembly)) File.Delete(temporaryAssembly);
            if (temporaryPdb is not null && File.Exists(temporaryPdb)) File.Delete(temporaryPdb);
        }
    }

    /// <summary>Resolves assembly references through the exact files the compiler used, not through folders.</summary>
    private sealed class ReferenceResolver : DefaultAssemblyResolver
    {
        private readonly Dictionary<string, string> _paths = new(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, AssemblyDefinition> _loaded = new(StringComparer.OrdinalIgnoreCase);

        public ReferenceResolver(IEnumerable<string> referencePaths)
        {
            foreach (var path in referencePaths.Where(File.Exists))
                _paths.TryAdd(Path.GetFileNameWithoutExtension(path), path);
        }

        public override AssemblyDefinition Resolve(AssemblyNameReference name, ReaderParameters parameters)
        {
            if (_loaded.TryGetValue(name.Name, out var loaded)) return loaded;
            if (!_paths.TryGetValue(name.Name, out var path)) return base.Resolve(name, parameters);
            loaded = AssemblyDefinition.ReadAssembly(path, new ReaderParameters(ReadingMode.Deferred) { AssemblyResolver = this, InMemory = true });
            _loaded.Add(name.Name, loaded);
            return loaded;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                foreach (var assembly in _loaded.Values) assembly.Dispose();
            base.Dispose(disposing);
        }
    }
}
