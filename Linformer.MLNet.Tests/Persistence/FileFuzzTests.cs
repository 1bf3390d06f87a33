using System.Globalization;
using TorchSharp;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// Fuzzing of the file readers: mutated model zips (<c>mlContext.Model.Load</c>) and mutated safetensors files
/// (<see cref="Linformer.MLNet.Persistence.PyTorchImport"/>). Each case either loads and reproduces the original
/// outputs bit for bit on fixed inputs, or is refused with one of <see cref="FileFuzzer.Documented"/> and no
/// unchecked exception (<see cref="FileFuzzer.Unchecked"/>) in its chain. A few hundred cases run in the normal
/// suite; <c>LINFORMER_FUZZ=10000 dotnet test Linformer.MLNet.Tests --filter TestCategory=Fuzz</c> runs that many
/// more with other seeds. A failure prints each case's seed and mutation; <c>LINFORMER_FUZZ_SEED=s</c> with the
/// Fuzz category reruns the one case of seed s in both fuzzers.
/// </summary>
[TestClass]
public sealed class FileFuzzTests
{
    public TestContext TestContext { get; set; } = null!;
    private string folder = null!;

    private int threads;

    // One intra-op thread: for these tiny models libtorch's thread pool only adds contention (as in the soak test).
    [TestInitialize]
    public void Create()
    {
        folder = Directory.CreateTempSubdirectory("linformer-fuzz-").FullName;
        threads = torch.get_num_threads();
        torch.set_num_threads(1);
    }

    [TestCleanup]
    public void Delete()
    {
        torch.set_num_threads(threads);
        Directory.Delete(folder, recursive: true);
    }

    private const int QuickModelZipCases = 200;
    private const int QuickSafetensorsCases = 150;

    // The normal suite and the opt-in run use disjoint seeds.
    private const int QuickFirstSeed = 1;
    private const int LongFirstSeed = 1_000_000;

    [TestMethod]
    public void MutatedModelZipsLoadIdenticallyOrAreRefusedClearly()
    {
        using var fuzzer = new ModelZipFuzzer();
        Report("model zip", Run(fuzzer.Case, fuzzer.Run, QuickFirstSeed, QuickModelZipCases), QuickModelZipCases);
    }

    [TestMethod]
    public void MutatedSafetensorsLoadIdenticallyOrAreRefusedClearly()
    {
        using var fuzzer = new SafetensorsFuzzer(folder);
        Report("safetensors", Run(fuzzer.Case, fuzzer.Run, QuickFirstSeed, QuickSafetensorsCases), QuickSafetensorsCases);
    }

    /// <summary>
    /// Why the settings carry their own SHA-256 (model format 1.3): reading a zip entry does not check its CRC, so a
    /// flipped bit in the compressed data can decode to other bytes without any error.
    /// </summary>
    [TestMethod]
    public void ZipReadingDoesNotCheckEntryCrcs()
    {
        var content = System.Text.Encoding.UTF8.GetBytes(string.Join(",", Enumerable.Range(0, 300)));
        var zip = FileFuzzer.WriteZip([("entry", content)]);
        const int dataStart = 30 + 5;   // the local header, then the entry's 5-character name
        int silent = 0, errors = 0;
        for (int at = dataStart; at < dataStart + 64; at++)
            for (int bit = 0; bit < 8; bit++)
            {
                var damaged = (byte[])zip.Clone();
                damaged[at] ^= (byte)(1 << bit);
                try
                {
                    if (!FileFuzzer.ReadZip(damaged).Single().Content.AsSpan().SequenceEqual(content)) silent++;
                }
                catch (InvalidDataException) { errors++; }
            }
        TestContext.WriteLine($"512 single-bit flips in the compressed data: {silent} decoded silently to other bytes, {errors} gave an error");
        Assert.IsGreaterThan(errors, silent, "most flips decode to other bytes without an error");
    }

    /// <summary>
    /// The long run: <c>LINFORMER_FUZZ</c> cases in all, three fifths model zips, two fifths safetensors (10 000 take
    /// a few minutes on two cores). Inconclusive without the variable.
    /// </summary>
    [TestMethod]
    [TestCategory("Fuzz")]
    public void FuzzModelZipsAndSafetensors()
    {
        var seedVariable = Environment.GetEnvironmentVariable("LINFORMER_FUZZ_SEED");
        var countVariable = Environment.GetEnvironmentVariable("LINFORMER_FUZZ");
        if (seedVariable is null && countVariable is null)
            Assert.Inconclusive("Fuzz run: set LINFORMER_FUZZ=<cases> (e.g. 10000), or LINFORMER_FUZZ_SEED=<seed> to rerun one case.");
        int first, zipCases, safetensorsCases;
        if (seedVariable is not null)
        {
            first = int.Parse(seedVariable, CultureInfo.InvariantCulture);
            zipCases = safetensorsCases = 1;
        }
        else
        {
            int total = int.Parse(countVariable!, CultureInfo.InvariantCulture);
            Assert.IsGreaterThan(0, total, "LINFORMER_FUZZ");
            first = LongFirstSeed;
            zipCases = total * 3 / 5;
            safetensorsCases = total - zipCases;
        }
        FuzzTally zips, safetensors;
        using (var fuzzer = new ModelZipFuzzer()) zips = Run(fuzzer.Case, fuzzer.Run, first, zipCases);
        using (var fuzzer = new SafetensorsFuzzer(folder)) safetensors = Run(fuzzer.Case, fuzzer.Run, first, safetensorsCases);
        TestContext.WriteLine($"model zip: {zips}");
        TestContext.WriteLine($"safetensors: {safetensors}");
        Report("model zip", zips, zipCases);
        Report("safetensors", safetensors, safetensorsCases);
    }

    private FuzzTally Run(Func<int, FuzzCase> make, Action<FuzzCase, FuzzTally> run, int firstSeed, int count)
    {
        var tally = new FuzzTally();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int seed = firstSeed; seed < firstSeed + count; seed++)
        {
            var c = make(seed);
            if (seed - firstSeed < 3 || count == 1) TestContext.WriteLine(c.ToString());
            run(c, tally);
        }
        TestContext.WriteLine($"{count} cases from seed {firstSeed} in {clock.Elapsed.TotalSeconds:F1} s");
        return tally;
    }

    private void Report(string what, FuzzTally tally, int cases)
    {
        TestContext.WriteLine($"{what}: {tally}");
        foreach (var failure in tally.Failures.Take(20)) TestContext.WriteLine("FAILED " + failure);
        Assert.AreEqual(cases, tally.Cases, $"{what}: every case ran");
        Assert.IsEmpty(tally.Failures, $"{what}: {tally.Failures.Count} of {tally.Cases} cases failed; first: {tally.Failures.FirstOrDefault()}");
    }
}
