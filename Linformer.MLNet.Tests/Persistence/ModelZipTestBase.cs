using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.ML;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// What the tests of a third-party transformer in an ordinary ML.NET model zip share: a temporary directory per test,
/// the <see cref="AddConstantTransformer"/> under test and its input rows, saving and failed loading, and running
/// the test tools (the model-load host, the weaver) in a new process.
/// </summary>
public abstract class ModelZipTestBase
{
    protected const string InputColumn = "Value";
    protected const string OutputColumn = "Shifted";
    protected const float Constant = 0.1f; // not exactly representable: a lossy round trip would show

    // Includes values where float addition rounds, a subnormal, a signed zero and the extremes.
    protected static readonly float[] Inputs = [1.5f, -2.25f, 0f, -0f, 3.3333333f, 1e-40f, float.MaxValue, -7e20f, 0.2f];

    /// <summary>Set by MSTest.</summary>
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A directory of this test's own, deleted after it.</summary>
    protected string TempDirectory { get; private set; } = null!;

    /// <summary>Creates <see cref="TempDirectory"/>.</summary>
    [TestInitialize]
    public void CreateDirectory()
    {
        TempDirectory = Path.Combine(Path.GetTempPath(), "linformer-persistence-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(TempDirectory);
    }

    /// <summary>Deletes <see cref="TempDirectory"/>.</summary>
    [TestCleanup]
    public void DeleteDirectory()
    {
        if (Directory.Exists(TempDirectory)) Directory.Delete(TempDirectory, recursive: true);
    }

    protected sealed class FloatRow
    {
        public float Value { get; set; }
    }

    protected static IDataView LoadInputs(MLContext mlContext)
        => mlContext.Data.LoadFromEnumerable(Inputs.Select(v => new FloatRow { Value = v }).ToList());

    protected string Save(ITransformer model)
    {
        var mlContext = new MLContext(seed: 1);
        var path = Path.Combine(TempDirectory, Guid.NewGuid().ToString("N") + ".zip");
        mlContext.Model.Save(model, LoadInputs(mlContext).Schema, path);
        return path;
    }

    protected static Exception LoadAndCatch(string path)
    {
        try
        {
            new MLContext().Model.Load(path, out _);
        }
        catch (Exception ex)
        {
            return ex;
        }
        Assert.Fail($"Loading {Path.GetFileName(path)} should have failed.");
        throw new UnreachableException();
    }

    protected static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    protected static string Describe(Exception ex)
    {
        var chain = new List<string>();
        for (Exception? e = ex; e is not null; e = e.InnerException) chain.Add($"{e.GetType().FullName}: {e.Message}");
        return string.Join(" --> ", chain);
    }

    // ------------------------------------------------------------------ processes

    protected sealed record ProcessRun(int ExitCode, string StandardOutput, string StandardError)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
    }

    protected static ProcessRun RunModelLoadHost(string modelPath)
    {
        var arguments = new List<string> { modelPath, AppContext.BaseDirectory, InputColumn, OutputColumn };
        arguments.AddRange(Inputs.Select(v => BitConverter.SingleToInt32Bits(v).ToString("X8", CultureInfo.InvariantCulture)));
        return RunDotnet(ToolPath("Linformer.Tests.ModelLoadHost"), [.. arguments]);
    }

    /// <summary>A build output the test project recorded (relative to the test assembly) in its assembly metadata.</summary>
    protected static string ToolPath(string key)
    {
        var relative = typeof(ModelZipTestBase).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .SingleOrDefault(a => a.Key == key)?.Value
            ?? throw new InvalidOperationException($"The test assembly has no '{key}' metadata; build it through Linformer.MLNet.Tests.csproj.");
        var path = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, relative));
        if (!File.Exists(path)) throw new FileNotFoundException($"{key} was not built: {path}", path);
        return path;
    }

    protected static ProcessRun RunDotnet(string dll, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start dotnet.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(dll)} did not finish within 2 minutes.");
        }
        return new ProcessRun(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The dotnet host running these tests (falls back to the one beside the runtime, then PATH).</summary>
    private static string DotnetHost()
    {
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk)) return fromSdk;
        var processPath = Environment.ProcessPath;
        if (processPath is not null && Path.GetFileNameWithoutExtension(processPath) == "dotnet") return processPath;
        var executable = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "dotnet.exe" : "dotnet";
        // The runtime lives in <dotnet root>/shared/Microsoft.NETCore.App/<version>/.
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var besideRuntime = Path.Combine(root, executable);
        return File.Exists(besideRuntime) ? besideRuntime : executable;
    }
}
