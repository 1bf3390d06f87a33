// Multiclass: which of SpamAssassin's three kinds of mail is this, "easy ham", "hard ham" (legitimate mail that
// looks like spam) or "spam"? The label is a text column made a Key by MapValueToKey, in the same pipeline as the
// Linformer encoder, whose own classification head is scored with ML.NET's multiclass evaluator as it is: Score
// holds the class probabilities, PredictedLabel the most probable class, and MapKeyToValue turns it back into text.
// For an honest reference, a bag of words and bigrams → SDCA maximum entropy on the same mails is evaluated too.
//
//   dotnet run --project Examples/MailCategories [-- --quick]
//
// --quick: 300 training mails (half spam) and 100 test mails, 3 epochs (a smoke test).
using System.Diagnostics;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

var arguments = new ExampleArgs(args);
bool quick = arguments.Has("--quick");

var ml = new MLContext(seed: 1);
var spam = ExampleData.Folder("spam");
var trainRows = CategorisedMail.Load(spam, "train");
var testRows = CategorisedMail.Load(spam, "test");
if (quick)
{
    // Half spam, half ham (easy and hard as they come), so a short run has both to learn from.
    trainRows = trainRows.Where(r => r.Category == "spam").Take(150).Concat(trainRows.Where(r => r.Category != "spam").Take(150)).ToList();
    testRows = testRows.Where((_, i) => i % 4 == 0).ToList();     // test.tsv lists ham, then spam: every 4th row keeps the mix
}
var train = ml.Data.LoadFromEnumerable(trainRows);
var test = ml.Data.LoadFromEnumerable(testRows);
string Counts(List<CategorisedMail> rows) => string.Join(", ", rows.GroupBy(r => r.Category).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}"));
Console.WriteLine($"data: {trainRows.Count} training mails ({Counts(trainRows)}), {testRows.Count} test mails ({Counts(testRows)})");

var total = Stopwatch.StartNew();
var progress = new TrainingProgressView("Linformer");
var linformer = new LinformerEstimator.Options
{
    InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = "Label",
    ScoreColumnName = "Score",   // + PredictedLabel: the head's outputs, as ML.NET's multiclass trainers name them
    VocabularySize = Gpt2Tokens.VocabularySize, PaddingTokenId = Gpt2Tokens.PaddingId,
    ModelWidth = 64, Heads = 4, Depth = 1, FeedForwardSize = 128, ProjectedLength = 64,
    Dropout = 0, FeedForwardDropout = 0.1,   // attention dropout would take libtorch off its fused attention kernel in training
    Epochs = quick ? 3 : 4, BatchSize = 16, LearningRate = quick ? 2e-3 : 1e-3,
    ValidationFraction = 0.1, EarlyStoppingPatience = 1,
    Progress = progress,
};
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", "Category")                        // text → Key<UInt32, 3>
    .Append(ml.Transforms.CustomMapping<TextInput, Tokens512>(Gpt2Tokens512Factory.Map, Gpt2Tokens512Factory.ContractName))
    .Append(ml.Transforms.Linformer(linformer))                                                   // Tokens → Features, Score, PredictedLabel
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedCategory", "PredictedLabel"));        // Key → text
var watch = Stopwatch.StartNew();
using var model = pipeline.Fit(train);
progress.Dispose();
Console.WriteLine($"trained in {watch.Elapsed.TotalSeconds:F0} s");
var predictions = model.Transform(test);
var metrics = ml.MulticlassClassification.Evaluate(predictions);   // default names: Label, Score, PredictedLabel

// Reference: bag of word unigrams and bigrams → SDCA maximum entropy (no neural network).
watch.Restart();
var ngramOptions = new TextFeaturizingEstimator.Options
{
    WordFeatureExtractor = new WordBagEstimator.Options { NgramLength = 2, UseAllLengths = true },
    CharFeatureExtractor = null,
};
var classic = ml.Transforms.Conversion.MapValueToKey("Label", "Category")
    .Append(ml.Transforms.Text.FeaturizeText("NGrams", ngramOptions, "Text"))
    .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(labelColumnName: "Label", featureColumnName: "NGrams"))
    .Fit(train);
var classicMetrics = ml.MulticlassClassification.Evaluate(classic.Transform(test));
var classicSeconds = watch.Elapsed.TotalSeconds;

Console.WriteLine();
Console.WriteLine($"{"on " + testRows.Count + " test mails",-40} {"micro acc.",10} {"macro acc.",10} {"log-loss",9}");
Print("Linformer classification head", metrics);
Print($"reference: n-grams → SDCA ({classicSeconds:F0} s)", classicMetrics);
Console.WriteLine();
Console.WriteLine("Linformer head, confusion matrix (rows: true class, columns: predicted):");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());
var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
predictions.Schema["Score"].GetSlotNames(ref slotNames);   // the label's key values name the probabilities
var classes = string.Join(", ", slotNames.DenseValues());
foreach (var row in ml.Data.CreateEnumerable<Prediction>(predictions, reuseRowObject: false).Where((_, i) => i % 25 == 0).Take(4))
    Console.WriteLine($"'{Shorten(row.Text)}' ({row.Category}) → {row.PredictedCategory}; P({classes}) = {string.Join(", ", row.Score.Select(p => p.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))}");
Console.WriteLine($"total time: {total.Elapsed.TotalMinutes:F1} min");
return 0;

static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";

static void Print(string name, MulticlassClassificationMetrics m)
    => Console.WriteLine($"{name,-40} {m.MicroAccuracy,10:F3} {m.MacroAccuracy,10:F3} {m.LogLoss,9:F3}");

/// <summary>A mail of the bundled SpamAssassin subset with its kind: the corpus group of ids.tsv without its number.</summary>
internal sealed class CategorisedMail
{
    public string Category { get; set; } = "";
    public string Text { get; set; } = "";

    /// <summary>Rows of <c>&lt;split&gt;.tsv</c> with their corpus group from ids.tsv (same order; the labels must agree).</summary>
    public static List<CategorisedMail> Load(string folder, string split)
    {
        var sources = File.ReadLines(Path.Combine(folder, "ids.tsv")).Skip(1).Select(l => l.Split('\t')).Where(f => f[0] == split).ToList();
        var mails = File.ReadLines(Path.Combine(folder, split + ".tsv")).Skip(1).ToList();
        if (sources.Count != mails.Count) throw new InvalidDataException($"ids.tsv lists {sources.Count} {split} rows, {split}.tsv has {mails.Count}.");
        return mails.Select((line, i) =>
        {
            int tab = line.IndexOf('\t');
            if (tab < 0 || line[..tab] != sources[i][1]) throw new InvalidDataException($"{split}.tsv row {i + 1} does not match ids.tsv ({sources[i][1]} {sources[i][2]}).");
            var group = sources[i][2][..sources[i][2].IndexOf('/')];   // e.g. hard-ham-1/00042 → hard-ham-1
            string category = group.StartsWith("easy-ham", StringComparison.Ordinal) ? "easy ham"
                : group.StartsWith("hard-ham", StringComparison.Ordinal) ? "hard ham"
                : group.StartsWith("spam", StringComparison.Ordinal) ? "spam"
                : throw new InvalidDataException($"Unknown corpus group '{group}' in ids.tsv.");
            return new CategorisedMail { Category = category, Text = line[(tab + 1)..] };
        }).ToList();
    }
}

internal sealed class Prediction
{
    public string Category { get; set; } = "";
    public string Text { get; set; } = "";
    public string PredictedCategory { get; set; } = "";
    public float[] Score { get; set; } = [];
}
