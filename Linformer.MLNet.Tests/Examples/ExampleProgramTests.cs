using System.Globalization;
using System.Text.RegularExpressions;

namespace Linformer.MLNet.Tests.Examples;

/// <summary>
/// Runs each example program under Examples/ as a user would (its built dll, small settings where it has them) and
/// checks its exit code and the figures it prints. Thresholds are far below what the full runs reach (their
/// READMEs), so they catch a broken pipeline, not a slightly different result.
/// </summary>
[TestClass]
public sealed class ExampleProgramTests
{
    public TestContext TestContext { get; set; } = null!;

    private ProgramRunner.Result Run(string project, params string[] args)
    {
        var result = ProgramRunner.RunDotnet(ProgramRunner.ExampleDll(project, project), args, TimeSpan.FromMinutes(15));
        TestContext.WriteLine(result.Output);
        TestContext.WriteLine(result.Error);
        Assert.AreEqual(0, result.ExitCode, $"{project} exited with {result.ExitCode}:\n{result.Output}\n{result.Error}");
        return result;
    }

    private static double Number(string output, string pattern)
    {
        var match = Regex.Match(output, pattern, RegexOptions.Multiline);
        Assert.IsTrue(match.Success, $"'{pattern}' not found in:\n{output}");
        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>accuracy, AUC and F1 of a table row that starts with <paramref name="rowStart"/> (a regular expression).</summary>
    private static (double Accuracy, double Auc, double F1) Metrics(string output, string rowStart)
    {
        var match = Regex.Match(output, "^" + rowStart + @"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", RegexOptions.Multiline);
        Assert.IsTrue(match.Success, $"No metrics row '{rowStart}' in:\n{output}");
        double At(int i) => double.Parse(match.Groups[i].Value, CultureInfo.InvariantCulture);
        return (At(1), At(2), At(3));
    }

    private string TemporaryFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "linformer-example-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    [TestMethod]
    public void QuickStartTrainsComparesSavesAndReloadsIdentically()
    {
        var output = TemporaryFolder();
        try
        {
            var result = Run("QuickStart", "--quick", "--output", output).Output;
            // 100 balanced test mails after 2 epochs on 300: well above chance (0.5), far below the full run.
            double linformerAuc = Number(result, @"^Linformer: accuracy [\d.]+, AUC ([\d.]+), F1");
            double fullAuc = Number(result, @"^Full attention: accuracy [\d.]+, AUC ([\d.]+), F1");
            Assert.IsGreaterThan(0.6, linformerAuc, result);
            Assert.IsGreaterThan(0.6, fullAuc, result);
            // The comparison table: a row per variant with train time, inference speed and peak memory.
            StringAssert.Matches(result, new Regex(@"^Linformer\s+[\d.]+s\s+\d+ rows/s\s+\d+ MiB", RegexOptions.Multiline));
            StringAssert.Matches(result, new Regex(@"^Full attention\s+[\d.]+s\s+\d+ rows/s\s+\d+ MiB", RegexOptions.Multiline));
            Assert.IsLessThanOrEqualTo(1e-6, Number(result, @"max \|P\(spam\) difference\| on \d+ test mails = (\S+)$"), result);
            StringAssert.Contains(result, "peak memory");
            var model = Regex.Match(result, @"^model: (.+)$", RegexOptions.Multiline).Groups[1].Value.Trim();
            Assert.IsTrue(File.Exists(model), $"model file '{model}' not found");
            Assert.AreEqual(Path.GetFullPath(output), Path.GetDirectoryName(model));
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [TestMethod]
    public void TextClassificationEvaluatesThePooledEncodingAndTheHead()
    {
        var result = Run("TextClassification", "--quick").Output;
        var pooled = Metrics(result, @"\(a\) Linformer pooled encoding → FastTree");
        var head = Metrics(result, @"\(b\) Linformer classification head");
        var ngrams = Metrics(result, @"reference: n-grams → SDCA \(\d+ s\)");
        Assert.IsGreaterThan(0.6, pooled.Auc, result);
        Assert.IsGreaterThan(0.6, head.Auc, result);
        Assert.IsGreaterThan(0.8, ngrams.Accuracy, result);
    }

    [TestMethod]
    public void MailCategoriesScoresTheMulticlassHeadWithMLNetsEvaluator()
    {
        var result = Run("MailCategories", "--quick").Output;
        var row = Regex.Match(result, @"^Linformer classification head\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", RegexOptions.Multiline);
        Assert.IsTrue(row.Success, result);
        double micro = double.Parse(row.Groups[1].Value, CultureInfo.InvariantCulture);
        // 100 test mails: 46 easy ham, 4 hard ham, 50 spam; always answering the largest class scores 0.5.
        Assert.IsGreaterThan(0.6, micro, result);
        StringAssert.Contains(result, "confusion matrix");
        // MapKeyToValue turned the head's PredictedLabel back into the category names.
        StringAssert.Matches(result, new Regex(@"\) → (easy ham|hard ham|spam); P\(", RegexOptions.Multiline));
    }

    [TestMethod]
    public void SensorSequencesBeatsChanceOnHeldOutMotes()
    {
        var result = Run("SensorSequences", "--quick").Output;
        var linformer = Metrics(result, "Linformer encoding → SDCA logistic regression");
        Assert.IsGreaterThan(0.7, linformer.Auc, result);
        Metrics(result, "raw 128 values → FastTree");
    }

    [TestMethod]
    public void PretrainThenFineTuneSavesTheEncoderAndComparesItWithScratchAndNGrams()
    {
        var output = TemporaryFolder();
        try
        {
            var result = Run("PretrainThenFineTune", "--quick", "--output", output).Output;
            StringAssert.Matches(result, new Regex(@"^  pre-training: epoch 1/1, .*validation accuracy [\d.]+", RegexOptions.Multiline));
            Assert.IsTrue(File.Exists(Path.Combine(output, "pretrained-encoder.zip")), result);
            // The fine-tuning starts from the saved zip, loaded back exactly.
            Assert.AreEqual(0, Number(result, @"max \|feature difference\| on \d+ test mails = (\S+)$"), result);
            // 50 balanced test mails after 3 epochs on 200: above chance (0.5), far below the full run.
            var pretrained = Metrics(result, @"Linformer pretrained \+ fine-tuned");
            var scratch = Metrics(result, "Linformer from scratch");
            var ngrams = Metrics(result, "reference: n-grams → SDCA");
            Assert.IsGreaterThan(0.6, pretrained.Auc, result);
            Assert.IsGreaterThan(0.6, scratch.Auc, result);
            Assert.IsGreaterThan(0.8, ngrams.Accuracy, result);
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void PyTorchWeightsReproducesEachFixtureThroughASavedModel(string caseName)
    {
        var output = TemporaryFolder();
        try
        {
            var result = Run("PyTorchWeights", Path.Combine(TestPaths.SeedFixtures, caseName), "--output", output).Output;
            Assert.IsLessThan(Tolerances.SeedFixture, Number(result, @"max \|ML\.NET \(saved and loaded\) - PyTorch\| = (\S+) over"), result);
            Assert.IsTrue(File.Exists(Path.Combine(output, caseName + ".zip")), result);
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [TestMethod]
    public void PyTorchWeightsRunsItsBundledCaseWithoutArguments()
    {
        var output = TemporaryFolder();
        try
        {
            var result = Run("PyTorchWeights", "--output", output).Output;
            StringAssert.Contains(result, "case: encoder-layerwise-gelu");
            Assert.IsLessThan(Tolerances.SeedFixture, Number(result, @"max \|ML\.NET \(saved and loaded\) - PyTorch\| = (\S+) over"), result);
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [TestMethod]
    public void SeedReadmePrintsShapeTimeAndMemory()
    {
        var result = Run("SeedReadme", "4096").Output;
        StringAssert.Contains(result, "N: 4096");
        StringAssert.Contains(result, "output: (1, 4096, 64)");
        Assert.IsGreaterThan(0, Number(result, @"^peak memory of this run \(model, input, forward\): ([\d,]+) MiB"));
        StringAssert.Contains(result, "forward time:");
    }

    [TestMethod]
    public void SeedReadmeMaxModeDoublesNUpToTheGivenLimit()
    {
        var result = Run("SeedReadme", "--max", "32768").Output;
        StringAssert.Matches(result, new Regex(@"^\s+16384\s", RegexOptions.Multiline));
        StringAssert.Matches(result, new Regex(@"^\s+32768\s.*\(1, 32768, 64\)", RegexOptions.Multiline));
        Assert.DoesNotMatchRegex(new Regex(@"^\s+65536\s", RegexOptions.Multiline), result);
    }

    public static IEnumerable<object[]> Cases => TestPaths.SeedCaseNames();
}
