using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Linformer.MLNet.Tests.Hardening;

/// <summary>
/// docs/hardening.md, "Numbers passed to libtorch": a number that TorchSharp converts to a temporary
/// <c>Scalar</c> can be finalised during the native call. This test compiles the library's source with Roslyn and
/// lists every expression that reaches a <c>TorchSharp.Scalar</c> parameter or operator operand through an implicit
/// conversion (<c>masked_fill(mask, 0f)</c>, <c>mul_(scale)</c>, <c>t * 2</c>, <c>arange(n)</c>, ...).
/// </summary>
[TestClass]
public sealed class ScalarArgumentTests
{
    private const string ScalarType = "TorchSharp.Scalar";
    private const string TensorType = "TorchSharp.torch.Tensor";

    private static bool IsNumber(ITypeSymbol type) => type.SpecialType is SpecialType.System_SByte or SpecialType.System_Byte
        or SpecialType.System_Int16 or SpecialType.System_UInt16 or SpecialType.System_Int32 or SpecialType.System_UInt32
        or SpecialType.System_Int64 or SpecialType.System_UInt64 or SpecialType.System_Single or SpecialType.System_Double
        or SpecialType.System_Decimal or SpecialType.System_Boolean;

    private static readonly CSharpParseOptions Parse = new(LanguageVersion.Preview);

    /// <summary>The library's source compiled against the assemblies this test runs with (built once).</summary>
    private static readonly Lazy<CSharpCompilation> Library = new(() =>
    {
        var root = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet");
        var sep = Path.DirectorySeparatorChar;
        var trees = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{sep}obj{sep}", StringComparison.Ordinal) && !f.Contains($"{sep}bin{sep}", StringComparison.Ordinal))
            .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f, Encoding.UTF8), Parse, f))
            .ToList();
        // The library's implicit usings (ImplicitUsings = enable in Directory.Build.props).
        trees.Add(CSharpSyntaxTree.ParseText(
            "global using System; global using System.Collections.Generic; global using System.IO; global using System.Linq; " +
            "global using System.Net.Http; global using System.Threading; global using System.Threading.Tasks;", Parse, "GlobalUsings.g.cs"));
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => !Path.GetFileName(p).StartsWith("Linformer.MLNet", StringComparison.Ordinal))   // the sources are compiled instead
            .Select(p => MetadataReference.CreateFromFile(p));
        return CSharpCompilation.Create("Linformer.MLNet", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
    });

    /// <summary>
    /// Every argument or operator operand of <paramref name="tree"/> that reaches a Scalar through an implicit
    /// conversion, as "file:line: expression". Fails when the tree does not compile (a conversion could go unseen).
    /// </summary>
    private static List<string> TemporaryScalars(CSharpCompilation compilation, SyntaxTree tree)
    {
        var model = compilation.GetSemanticModel(tree);
        // CS8795: [GeneratedRegex] partial methods, implemented by a source generator this compilation does not run.
        var errors = model.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && d.Id != "CS8795").ToList();
        Assert.IsEmpty(errors, $"{tree.FilePath} must compile here, or conversions could go unseen:\n" + string.Join("\n", errors.Take(20)));
        var found = new List<string>();
        void Add(ExpressionSyntax expression)
        {
            var line = tree.GetLineSpan(expression.Span).StartLinePosition.Line + 1;
            found.Add($"{Path.GetRelativePath(TestPaths.RepositoryRoot, tree.FilePath)}:{line}: {expression}");
        }
        foreach (var node in tree.GetRoot().DescendantNodes())
        {
            ExpressionSyntax[] operands = node switch
            {
                ArgumentSyntax a => [a.Expression],
                BinaryExpressionSyntax b => [b.Left, b.Right],
                AssignmentExpressionSyntax c when c is not { Parent: InitializerExpressionSyntax } => [c.Left, c.Right],
                _ => [],
            };
            // Tensor's operators with a number operand (t * 2, t / 3.5) make the Scalar inside TorchSharp.
            if (node is BinaryExpressionSyntax or AssignmentExpressionSyntax
                && model.GetSymbolInfo(node).Symbol is IMethodSymbol { MethodKind: MethodKind.UserDefinedOperator } op
                && op.ContainingType.ToDisplayString() == TensorType)
            {
                for (int i = 0; i < op.Parameters.Length && i < operands.Length; i++)
                    if (IsNumber(op.Parameters[i].Type)) Add(operands[i]);
                continue;
            }
            foreach (var expression in operands)
            {
                // A number converted implicitly to a Scalar (or to a Tensor) on its way into TorchSharp.
                var type = model.GetTypeInfo(expression);
                var target = type.ConvertedType?.ToDisplayString();
                if (target != ScalarType && target != TensorType || type.Type?.ToDisplayString() == target) continue;
                if (model.GetConversion(expression).IsUserDefined) Add(expression);
            }
        }
        return found;
    }

    [TestMethod]
    public void NoNumberReachesLibtorchAsATemporaryScalar()
    {
        var compilation = Library.Value;
        Assert.IsGreaterThan(20, compilation.SyntaxTrees.Count(), "the library's source files were not found");
        var found = compilation.SyntaxTrees.Where(t => t.ToString().Contains("TorchSharp", StringComparison.Ordinal))
            .SelectMany(t => TemporaryScalars(compilation, t)).ToList();
        Assert.IsEmpty(found, "Numbers passed where TorchSharp takes a Scalar (use an explicit Scalar in a using declaration, " +
                              "or a static one from Modules/Scalars.cs):\n" + string.Join("\n", found));
    }

    [TestMethod]
    public void TheScanFindsBareNumbersInCallsAndOperators()
    {
        // The check itself: a file in the library with the kinds of temporaries it must catch.
        var probe = CSharpSyntaxTree.ParseText("""
            using static TorchSharp.torch;
            namespace Linformer.MLNet.Modules;
            internal static class Probe
            {
                public static Tensor Bad(Tensor t, Tensor mask, double p, long n)
                    => t.masked_fill(mask, 0f).mul(p).add_(t * 2) + arange(n) / 3.5 - t.clamp_min(1e-6);
                public static Tensor Tensors(Tensor t) => 1.0f / pow(100000f, t);
                public static Tensor Good(Tensor t, Tensor mask) => t.masked_fill(mask, Scalars.Zero);
            }
            """, Parse, Path.Combine(TestPaths.RepositoryRoot, "Probe.cs"));
        var found = TemporaryScalars(Library.Value.AddSyntaxTrees(probe), probe);
        foreach (var expected in new[] { "0f", "p", "2", "n", "3.5", "1e-6", "1.0f", "100000f" })
            Assert.IsTrue(found.Any(f => f.EndsWith(": " + expected, StringComparison.Ordinal)), $"'{expected}' was not found; found:\n{string.Join("\n", found)}");
        Assert.HasCount(8, found, string.Join("\n", found));
    }
}
