// ML.NET finds a model's loader through an assembly-level LoadableClassAttribute, a type internal to
// Microsoft.ML.Core that the build adds to this assembly after compilation (build/Linformer.MLNet.Weaving.targets,
// docs/persistence.md, docs/mlnet-internals.md). The runtime instantiates that attribute only if this assembly may
// see Microsoft.ML.Core's internals; without this line ML.NET silently finds no loader.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]

// The runtime recognises the attribute class by its full name only, so it lives in System.Runtime.CompilerServices
// although the file belongs to Linformer.MLNet/Interop with every other access to ML.NET's internals.
namespace System.Runtime.CompilerServices
{
    /// <summary>
    /// Tells the runtime (not the C# compiler) to skip access checks from this assembly into the named one.
    /// The runtime recognises the attribute by its full name; the BCL does not declare it, so we do.
    /// </summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        /// <summary>Skips access checks into the assembly with this simple name.</summary>
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        /// <summary>The simple name of the assembly whose internals become accessible.</summary>
        public string AssemblyName { get; }
    }
}
