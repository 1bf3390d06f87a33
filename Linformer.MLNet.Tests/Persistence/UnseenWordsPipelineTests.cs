using System.Globalization;
using Linformer.MLNet.Tests.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// ML.NET's own text path into the Linformer: <c>TokenizeIntoWords → MapValueToKey → Linformer → SDCA</c> trains on
/// variable-length key columns, saves, loads in a new process (new MLContext, no registration) and scores text full
/// of words it never saw (ML.NET's missing key 0, read as the reserved unknown token) bit for bit as the original.
/// </summary>
[TestClass]
public sealed class UnseenWordsPipelineTests
{
    public sealed class Mail
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    private static readonly string[] Spam = ["win", "cash", "prize", "free", "offer", "click", "now", "money"];
    private static readonly string[] Ham = ["meeting", "agenda", "notes", "lunch", "team", "report", "monday", "review"];
    private static readonly string[] Common = ["the", "a", "for", "your", "our", "and", "with", "this"];

    private static IEnumerable<Mail> Mails(int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            bool spam = i % 2 == 0;
            var words = Enumerable.Range(0, random.Next(3, 24))
                .Select(_ => random.Next(3) == 0 ? Common[random.Next(Common.Length)] : (spam ? Spam : Ham)[random.Next(8)]);
            yield return new Mail { Text = string.Join(' ', words), Label = spam };
        }
    }

    [TestMethod]
    public void TrainsSavesAndScoresUnseenWordsInANewProcessBitIdentical()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Mails(48, 1));
        var pipeline = ml.Transforms.Text.TokenizeIntoWords("Words", nameof(Mail.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words"))
            .Append(ml.Transforms.Linformer(new LinformerEstimator.Options
            {
                InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = nameof(Mail.Label), SequenceLength = 16,
                ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16, Epochs = 2, BatchSize = 8,
            }))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(nameof(Mail.Label), "Features", maximumNumberOfIterations: 10));
        var model = pipeline.Fit(train);

        var probe = new[]
        {
            new Mail { Text = "zebra quantum flux capacitor", Label = true },                       // nothing seen in training
            new Mail { Text = "win cash now with unheardof bonuses", Label = true },                  // seen and unseen words
            new Mail { Text = "team meeting moved to Tuesday afternoon, bring the quarterly report", Label = false },
            new Mail { Text = string.Join(' ', Enumerable.Repeat("free prize xylophone", 12)), Label = true },   // 36 words: cut to 16
        };
        var probeData = ml.Data.LoadFromEnumerable(probe);
        string[] columns = ["Features", "Score", "Probability"];
        var scored = model.Transform(probeData);
        var expected = columns.ToDictionary(c => c, c => scored.Schema[c].Type is VectorDataViewType
            ? scored.GetColumn<float[]>(c).ToList() : scored.GetColumn<float>(c).Select(v => new[] { v }).ToList());
        Assert.IsTrue(expected["Probability"].All(p => float.IsFinite(p[0])), "every probe mail is scored");

        var folder = Path.Combine(Path.GetTempPath(), $"linformer-unseen-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            string modelPath = Path.Combine(folder, "model.zip"), dataPath = Path.Combine(folder, "probe.idv"), jobsPath = Path.Combine(folder, "jobs.txt");
            ml.Model.Save(model, train.Schema, modelPath);
            using (var stream = File.Create(dataPath)) ml.Data.SaveAsBinary(probeData, stream);
            File.WriteAllText(jobsPath, $"{modelPath}|{dataPath}|{string.Join(",", columns)}\n");
            var host = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "LinformerModelHost", "bin",
                TestPaths.Configuration, "net10.0", "LinformerModelHost.dll");
            Assert.IsTrue(File.Exists(host), $"{host} was not built");
            var result = ProgramRunner.RunDotnet(host, new[] { jobsPath }, TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, result.ExitCode, result.Error);
            var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
            foreach (var column in columns)
            {
                var values = lines.Where(l => l.StartsWith($"value {column} ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
                Assert.HasCount(probe.Length, values, $"rows of '{column}' in the new process");
                for (int row = 0; row < values.Count; row++)
                {
                    var floats = values[row].Skip(3).Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
                    CollectionAssert.AreEqual(expected[column][row], floats, $"'{column}' of probe mail {row} ('{probe[row].Text}'): original vs loaded in a new process");
                }
            }
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
