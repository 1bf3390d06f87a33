using System.Diagnostics;

namespace Linformer.MLNet.Tests.Examples;

/// <summary>Runs a program built from this repository in a child process, as a user would.</summary>
internal static class ProgramRunner
{
    public sealed record Result(int ExitCode, string Output, string Error);

    /// <summary>The built dll of a project under Examples/ (same configuration as the tests).</summary>
    public static string ExampleDll(string project, string assemblyName)
    {
        var dll = Path.Combine(TestPaths.RepositoryRoot, "Examples", project, "bin", TestPaths.Configuration, "net10.0", assemblyName + ".dll");
        Assert.IsTrue(File.Exists(dll), $"{dll} was not built");
        return dll;
    }

    public static Result RunDotnet(string dll, IEnumerable<string> args, TimeSpan timeout, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(dll)} did not finish within {timeout}");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
