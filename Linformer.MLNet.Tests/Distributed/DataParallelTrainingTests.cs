using System.Diagnostics;
using Microsoft.ML;
using TorchSharp;

namespace Linformer.MLNet.Tests.Distributed;

/// <summary>
/// Data-parallel Fit under <c>mpiexec</c> (Linformer.MLNet.Distributed on MPICH), run on a small program
/// (DistributedHost/) in separate processes. Without mpiexec on the PATH these tests are inconclusive on a
/// developer's machine and fail under CI (<c>CI</c> or <c>LINFORMER_REQUIRE_MPI</c> set), where .ci/run installs MPICH.
/// </summary>
[TestClass]
public sealed class DataParallelTrainingTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    public TestContext TestContext { get; set; } = null!;

    private static string Host
    {
        get
        {
            var dll = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "DistributedHost", "bin", TestPaths.Configuration, "net10.0", "DistributedHost.dll");
            Assert.IsTrue(File.Exists(dll), $"{dll} was not built");
            return dll;
        }
    }

    private static string Mpiexec()
    {
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, "mpiexec")).FirstOrDefault(File.Exists);
        if (found is not null) return found;
        bool required = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")) || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("LINFORMER_REQUIRE_MPI"));
        if (required) Assert.Fail("mpiexec is not on the PATH, and CI requires the data-parallel tests: install MPICH (apt-get install mpich; .ci/run does).");
        Assert.Inconclusive("mpiexec is not on the PATH: install MPICH (apt-get install mpich) to run the data-parallel tests.");
        return "";
    }

    private sealed record Run(int ExitCode, string Output, string Error, TimeSpan Elapsed);

    private static Run Start(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(Host)! };
        foreach (var a in args) start.ArgumentList.Add(a);
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(HangGuard))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"'{program} {string.Join(' ', args)}' was still running after {HangGuard}: a hang. Output: {stdout.Result}{stderr.Result}");
        }
        process.WaitForExit();
        return new Run(process.ExitCode, stdout.Result, stderr.Result, watch.Elapsed);
    }

    private static Dictionary<string, float[]> Weights(string modelPath)
    {
        var model = (LinformerTransformer)new MLContext().Model.Load(modelPath, out _);
        try
        {
            using var scope = torch.NewDisposeScope();
            return model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.cpu().to(torch.float32).contiguous().data<float>().ToArray());
        }
        finally { model.Dispose(); }
    }

    private static double MaxDifference(Dictionary<string, float[]> a, Dictionary<string, float[]> b)
    {
        CollectionAssert.AreEquivalent(a.Keys.ToList(), b.Keys.ToList());
        return a.Max(kv => kv.Value.Zip(b[kv.Key], (x, y) => Math.Abs((double)x - y)).DefaultIfEmpty(0).Max());
    }

    [TestMethod]
    public void TwoProcessesOfSixteenRowsTrainTheSameWeightsAsOneProcessOfThirtyTwo()
    {
        var mpiexec = Mpiexec();
        var folder = Directory.CreateTempSubdirectory("linformer-mpi-");
        try
        {
            string one = Path.Combine(folder.FullName, "one.zip"), two = Path.Combine(folder.FullName, "two.zip"), small = Path.Combine(folder.FullName, "small.zip");
            // 32 rows, 10 epochs of one optimizer step: 10 steps of the same 32 rows, as one batch or as two processes' 16.
            var single = Start("dotnet", Host, "train", one, "32");
            Assert.AreEqual(0, single.ExitCode, single.Output + single.Error);
            var parallel = Start(mpiexec, "-n", "2", "dotnet", Host, "train", two, "16", "--mpi");
            Assert.AreEqual(0, parallel.ExitCode, parallel.Output + parallel.Error);
            StringAssert.Contains(parallel.Output, "model written by process 0 of 2");
            var control = Start("dotnet", Host, "train", small, "16");
            Assert.AreEqual(0, control.ExitCode, control.Output + control.Error);

            double difference = MaxDifference(Weights(one), Weights(two));
            double controlDifference = MaxDifference(Weights(one), Weights(small));
            TestContext.WriteLine($"max |weight difference| after 10 steps: 2 processes x 16 vs 1 x 32: {difference:E2}; 1 process x 16 vs 1 x 32: {controlDifference:E2}");
            Assert.IsLessThanOrEqualTo(1e-5, difference, "2 processes x batch 16 vs 1 process x batch 32");
            Assert.IsGreaterThan(1e-3, controlDifference, "one process with batches of 16 trains differently, so the comparison means something");
        }
        finally { folder.Delete(recursive: true); }
    }

    [TestMethod]
    public void AProcessThatThrowsStopsTheWholeJobWithAnError()
    {
        var mpiexec = Mpiexec();
        // Process 1 finds a NaN label in its rows while process 0 already waits for it in the first all-reduce: without
        // the abort, process 0 would wait forever (Start fails the test after its hang guard).
        var run = Start(mpiexec, "-n", "2", "dotnet", Host, "fail");
        TestContext.WriteLine($"mpiexec exited with {run.ExitCode} after {run.Elapsed.TotalSeconds:F1} s");
        TestContext.WriteLine(run.Error);
        Assert.AreNotEqual(0, run.ExitCode, "mpiexec reports the failure");
        StringAssert.Contains(run.Error, "Linformer MPI process 1 of 2 failed; aborting all processes");
        StringAssert.Contains(run.Error, "Label column 'Target' holds NaN in row 1");
        Assert.DoesNotContain("process 0: done", run.Output, "process 0 did not finish training on its own");
    }

    [TestMethod]
    public void TheDistributedTrainingExampleTrainsOnTwoProcessesAndSavesOnProcessZero()
    {
        var mpiexec = Mpiexec();
        var dll = Path.Combine(TestPaths.RepositoryRoot, "Examples", "DistributedTraining", "bin", TestPaths.Configuration, "net10.0", "DistributedTraining.dll");
        Assert.IsTrue(File.Exists(dll), $"{dll} was not built");
        var model = Path.Combine(Path.GetDirectoryName(dll)!, "distributed-model.zip");
        File.Delete(model);
        var run = Start(mpiexec, "-n", "2", "dotnet", dll, "--epochs", "2");
        TestContext.WriteLine(run.Output);
        Assert.AreEqual(0, run.ExitCode, run.Output + run.Error);
        StringAssert.Contains(run.Output, "on 2 process(es)");
        var auc = System.Text.RegularExpressions.Regex.Match(run.Output, @"test windows: accuracy [\d.]+, AUC ([\d.]+)");
        Assert.IsTrue(auc.Success, run.Output);
        Assert.IsGreaterThan(0.7, double.Parse(auc.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), "AUC on the test windows after 2 epochs");
        Assert.IsTrue(File.Exists(model), "process 0 saved the model");
    }
}
