using System.Globalization;
using System.Text.RegularExpressions;

namespace Linformer.MLNet.Tests.Examples;

/// <summary>
/// Examples/OnnxScoring as a user runs it: Train (--quick) saves both zips and compares the outputs and the three
/// encoders; Scoring loads the ONNX Runtime zip in its own process, without libtorch, and scores the test mails.
/// </summary>
[TestClass]
public sealed class OnnxScoringExampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void TrainSavesBothZipsAndScoringLoadsTheOnnxRuntimeOneWithoutLibTorch()
    {
        var folder = Path.Combine(Path.GetTempPath(), "linformer-onnx-scoring-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var train = ProgramRunner.RunDotnet(ProgramRunner.ExampleDll(Path.Combine("OnnxScoring", "Train"), "OnnxScoring.Train"),
                ["--quick", "--output", folder], TimeSpan.FromMinutes(15));
            TestContext.WriteLine(train.Output);
            Assert.AreEqual(0, train.ExitCode, $"{train.Output}\n{train.Error}");
            var diffs = Regex.Match(train.Output, @"max \|ONNX Runtime - TorchSharp\|: Features (\S+), Probability (\S+)$", RegexOptions.Multiline);
            Assert.IsTrue(diffs.Success, train.Output);
            Assert.IsLessThanOrEqualTo(1e-5, double.Parse(diffs.Groups[1].Value, CultureInfo.InvariantCulture), train.Output);
            Assert.IsLessThanOrEqualTo(1e-5, double.Parse(diffs.Groups[2].Value, CultureInfo.InvariantCulture), train.Output);
            var apply = Regex.Match(train.Output, @"ML\.NET ApplyOnnxModel\s+\d+\s+\(\S+ LinformerOnnxTransformer; max \|diff\| (\S+)\)");
            Assert.IsTrue(apply.Success, train.Output);
            Assert.IsLessThanOrEqualTo(1e-5, double.Parse(apply.Groups[1].Value, CultureInfo.InvariantCulture), train.Output);

            var scoring = ProgramRunner.RunDotnet(ProgramRunner.ExampleDll(Path.Combine("OnnxScoring", "Scoring"), "OnnxScoring.Scoring"),
                ["--model", Path.Combine(folder, "spam-onnx.zip")], TimeSpan.FromMinutes(5));
            TestContext.WriteLine(scoring.Output);
            Assert.AreEqual(0, scoring.ExitCode, $"{scoring.Output}\n{scoring.Error}");
            StringAssert.Matches(scoring.Output, new Regex(@"^400 test mails: accuracy [\d.]+, AUC [\d.]+, \d+ mails/s", RegexOptions.Multiline));
            var natives = Regex.Match(scoring.Output, "^native libraries loaded: (.*)$", RegexOptions.Multiline).Groups[1].Value;
            StringAssert.Contains(natives, "onnxruntime");
            Assert.DoesNotContain("libtorch", natives, scoring.Output);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
