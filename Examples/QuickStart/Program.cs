// Quick start: spam or ham? Real e-mails (the SpamAssassin subset in Examples/data/spam) → a Linformer encoder that
// tokenises the text itself (GPT-2, 512 tokens per mail) and is trained with the label → logistic regression, all in
// one ML.NET pipeline. Then the same pipeline with full attention, side by side, and the model saved, loaded back and
// checked.
//
//   dotnet run --project Examples/QuickStart [-- --quick] [--output <folder>] [--onnx-int8]
//
// --quick trains on 300 mails for 2 epochs (a smoke test); --output sets where quickstart-model.zip is written
// (default: next to the program); --onnx-int8 also scores the Linformer encoder with ONNX Runtime in float32 and int8
// and evaluates the logistic regression on those encodings (docs/onnx.md).
using System.Diagnostics;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;

var arguments = new ExampleArgs(args);
bool quick = arguments.Has("--quick");
string outputFolder = arguments.Value("--output") ?? AppContext.BaseDirectory;
const int SequenceLength = 512;
const int EndOfText = 50256;   // GPT-2's <|endoftext|>, which ordinary text never encodes to: the padding id

var ml = new MLContext(seed: 1);
var gpt2 = LinformerTokenizer.Gpt2();   // saved inside the model: Model.Load needs no registration and no file

var spam = ExampleData.Folder("spam");
var trainRows = SpamMail.Load(Path.Combine(spam, "train.tsv"), quick ? 150 : int.MaxValue);
var testRows = SpamMail.Load(Path.Combine(spam, "test.tsv"), quick ? 50 : int.MaxValue);
var train = ml.Data.LoadFromEnumerable(trainRows);
var test = ml.Data.LoadFromEnumerable(testRows);
int truncated = trainRows.Concat(testRows).Count(m => gpt2.EncodeToIds(m.Text).Count > SequenceLength);
Console.WriteLine($"data: {trainRows.Count} training mails ({trainRows.Count(m => m.Label)} spam), {testRows.Count} test mails ({testRows.Count(m => m.Label)} spam)");
Console.WriteLine($"tokens: GPT-2, N = {SequenceLength} per mail ({truncated} of {trainRows.Count + testRows.Count} mails are longer and truncated), padding id {EndOfText}");

LinformerEstimator.Options Settings(bool fullAttention, IProgress<LinformerTrainingProgress> progress) => new()
{
    InputColumnName = "Text", OutputColumnName = "Features", LabelColumnName = "Label",
    Tokenizer = gpt2, SequenceLength = SequenceLength,   // the first 512 tokens of each mail
    // GPT-2's own 50257 ids and <|endoftext|> as padding, without the three reserved ids (this supervised run uses
    // no mask token): the network the figures in the README were measured with, bit for bit.
    ReserveSpecialTokens = false, PaddingTokenId = EndOfText,
    // One layer: on 1,080 training mails a second layer fits the training set sooner and generalises no better.
    ModelWidth = 64, Heads = 4, Depth = 1, FeedForwardSize = 128, ProjectedLength = 64,
    FullAttention = fullAttention,
    Precision = arguments.Precision,   // --bf16: mixed-precision training and bf16 inference (README, "Precision")
    // No attention dropout: with dropout, libtorch's attention leaves its fused kernel for a slower path in
    // training (about 2.5× slower here); the feed-forward dropout and early stopping regularise instead.
    Dropout = 0, FeedForwardDropout = 0.1,
    Epochs = quick ? 2 : 4, BatchSize = 16, LearningRate = 1e-3,
    ValidationFraction = 0.1, EarlyStoppingPatience = 1,   // keeps the epoch with the best validation loss
    Progress = progress,
};

IEstimator<ITransformer> Pipeline(LinformerEstimator.Options options) =>
    ml.Transforms.Linformer(options)                  // Text → Features (64)
        .AppendCacheCheckpoint(ml)                     // SDCA reads the features many times
        .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "Features"));

Run Train(string name, bool fullAttention)
{
    Console.WriteLine();
    Console.WriteLine($"== {name} ==");
    ITransformer model;
    var watch = Stopwatch.StartNew();
    long peak;
    using (var progress = new TrainingProgressView(name))
    using (var memory = new PeakMemory())
    {
        model = Pipeline(Settings(fullAttention, progress)).Fit(train);
        peak = memory.PeakAboveStart;
    }
    var trainTime = watch.Elapsed;
    var predictions = model.Transform(test);
    var scores = predictions.GetColumn<float>("Probability").ToArray();
    var metrics = ml.BinaryClassification.Evaluate(predictions, labelColumnName: "Label");
    Console.WriteLine($"{name}: accuracy {metrics.Accuracy:F3}, AUC {metrics.AreaUnderRocCurve:F3}, F1 {metrics.F1Score:F3} on {testRows.Count} test mails");
    return new Run(name, model, scores, trainTime, peak, metrics);
}

// Inference speed: both models predict the test mails in turn, three times; the fastest pass counts (other work on
// the machine only ever slows a pass down).
double[] InferenceRowsPerSecond(params Run[] runs)
{
    var best = new double[runs.Length];
    for (int repeat = 0; repeat < 3; repeat++)
        for (int i = 0; i < runs.Length; i++)
        {
            var watch = Stopwatch.StartNew();
            _ = runs[i].Model.Transform(test).GetColumn<float>("Probability").Count();   // every row: tokens, encoder, SDCA
            best[i] = Math.Max(best[i], testRows.Count / watch.Elapsed.TotalSeconds);
        }
    return best;
}

// Warm-up: a tiny fit of both variants, so that libtorch's code and thread pools are loaded before anything is
// timed or measured (otherwise the first variant pays for them).
foreach (bool fullAttention in new[] { false, true })
{
    var few = ml.Data.TakeRows(train, 16);
    var warmUp = Settings(fullAttention, null!);
    warmUp.Epochs = 1; warmUp.ValidationFraction = 0; warmUp.Progress = null;
    (Pipeline(warmUp).Fit(few) as IDisposable)?.Dispose();
}

var total = Stopwatch.StartNew();
var linformer = Train("Linformer", fullAttention: false);
var full = Train("Full attention", fullAttention: true);
var rowsPerSecond = InferenceRowsPerSecond(linformer, full);

// Save, load back (as another process would: only the zip, the tokenizer is inside it), predict again.
Directory.CreateDirectory(outputFolder);
string modelPath = Path.GetFullPath(Path.Combine(outputFolder, "quickstart-model.zip"));
ml.Model.Save(linformer.Model, train.Schema, modelPath);
var loaded = ml.Model.Load(modelPath, out _);
var reloadedScores = loaded.Transform(test).GetColumn<float>("Probability").ToArray();
double maxDifference = linformer.Scores.Zip(reloadedScores, (a, b) => (double)Math.Abs(a - b)).Max();

Console.WriteLine();
Console.WriteLine($"same settings: N = {SequenceLength}, width 64, 1 layer, 4 heads, k = 64 (Linformer), {Settings(false, null!).Epochs} epochs at most, batch 16; {trainRows.Count} training / {testRows.Count} test mails");
Console.WriteLine($"{"",-16} {"train time",11} {"inference",12} {"peak memory",12} {"accuracy",9} {"AUC",7} {"F1",7}");
foreach (var (r, speed) in new[] { linformer, full }.Zip(rowsPerSecond))
    Console.WriteLine($"{r.Name,-16} {r.TrainTime.TotalSeconds,10:F1}s {speed,7:F0} rows/s {r.PeakBytes / 1048576.0,8:F0} MiB {r.Metrics.Accuracy,9:F3} {r.Metrics.AreaUnderRocCurve,7:F3} {r.Metrics.F1Score,7:F3}");
Console.WriteLine($"train time: the whole pipeline's Fit; inference: best of 3 passes over the test mails; peak memory: {PeakMemory.Method}, during Fit");
Console.WriteLine();
Console.WriteLine($"saved and loaded back: max |P(spam) difference| on {reloadedScores.Length} test mails = {maxDifference:E2}");
var first = testRows[0];
Console.WriteLine($"first test mail ({(first.Label ? "spam" : "ham")}): '{first.Text[..Math.Min(60, first.Text.Length)]}…' → P(spam) = {linformer.Scores[0]:F3} → {reloadedScores[0]:F3} after loading");
Console.WriteLine($"total time: {total.Elapsed.TotalMinutes:F1} min");
Console.WriteLine($"model: {modelPath}");
if (arguments.Has(OnnxEncoderCheck.Flag)) OnnxEncoderCheck.Run(ml, linformer.Model, test, "Label");

foreach (var m in new[] { linformer.Model, full.Model, loaded }) (m as IDisposable)?.Dispose();
return 0;

internal sealed record Run(string Name, ITransformer Model, float[] Scores, TimeSpan TrainTime, long PeakBytes, BinaryClassificationMetrics Metrics);
