// Long-text classification: spam or ham on whole e-mails of up to N = 1024 GPT-2 tokens. One Linformer encoder is
// trained with the label, and its two outputs are evaluated with ML.NET's evaluator:
//   (a) the pooled encoding (Features) → FastTree, a standard ML.NET trainer;
//   (b) the encoder's own classification head (ScoreColumnName): log-odds, P(spam) and the predicted label directly.
// For an honest reference, a classic bag-of-words-and-bigrams model (FeaturizeText → SDCA logistic regression) on the same
// mails is evaluated too.
//
//   dotnet run --project Examples/TextClassification [-- --quick] [--onnx-int8] [--windows]
//
// --quick: 250 training and 40 test mails per class, 3 epochs (a smoke test); --onnx-int8 also scores the encoder with
// ONNX Runtime in float32 and int8 and evaluates (a)'s FastTree on those encodings (docs/onnx.md).
// --windows (or LINFORMER_LONG_INPUTS=windows): the transform encodes a mail longer than N as windows of N
// (LongInputs = Windows) instead of its first N tokens. Fit trains on the first N tokens either way, with the same
// network, so the two runs train the same encoder.
using System.Diagnostics;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

var arguments = new ExampleArgs(args);
bool quick = arguments.Has("--quick");
bool windows = arguments.Has("--windows") || string.Equals(Environment.GetEnvironmentVariable("LINFORMER_LONG_INPUTS"), "windows", StringComparison.OrdinalIgnoreCase);
const int SequenceLength = 1024;
const int EndOfText = 50256;   // GPT-2's <|endoftext|>, which ordinary text never encodes to: the padding id

var ml = new MLContext(seed: 1);
var spam = ExampleData.Folder("spam");
var trainRows = SpamMail.Load(Path.Combine(spam, "train.tsv"), quick ? 250 : int.MaxValue);
var testRows = SpamMail.Load(Path.Combine(spam, "test.tsv"), quick ? 40 : int.MaxValue);
var train = ml.Data.LoadFromEnumerable(trainRows);
var test = ml.Data.LoadFromEnumerable(testRows);
var gpt2 = LinformerTokenizer.Gpt2();   // the transform tokenises the text; the model saves the tokenizer
var lengths = trainRows.Concat(testRows).Select(m => gpt2.EncodeToIds(m.Text).Count).Order().ToArray();
Console.WriteLine($"data: {trainRows.Count} training mails, {testRows.Count} test mails, half of each spam");
Console.WriteLine($"tokens per mail (GPT-2): median {lengths[lengths.Length / 2]}, 90th percentile {lengths[lengths.Length * 9 / 10]}, longest {lengths[^1]}; " +
                  $"N = {SequenceLength} keeps {lengths.Count(l => l <= SequenceLength)} of {lengths.Length} mails whole");

var total = Stopwatch.StartNew();
var progress = new TrainingProgressView("Linformer");
var linformer = new LinformerEstimator.Options
{
    InputColumnName = "Text", OutputColumnName = "Features", LabelColumnName = "Label",
    Tokenizer = gpt2, SequenceLength = SequenceLength,   // the first 1024 tokens of each mail
    // The head's outputs under names of their own: FastTree below adds Score, Probability and PredictedLabel.
    ScoreColumnName = "HeadScore", ProbabilityColumnName = "HeadProbability", PredictedLabelColumnName = "HeadPredictedLabel",
    ReserveSpecialTokens = false, PaddingTokenId = EndOfText,   // GPT-2's own 50257 ids, <|endoftext|> as padding
    ModelWidth = 64, Heads = 4, Depth = 1, FeedForwardSize = 128, ProjectedLength = 128,
    Precision = arguments.Precision,   // --bf16: mixed-precision training and bf16 inference (README, "Precision")
    Dropout = 0, FeedForwardDropout = 0.1,   // attention dropout would take libtorch off its fused attention kernel in training
    Epochs = quick ? 3 : 4, BatchSize = 16, LearningRate = 1e-3,
    ValidationFraction = 0.1, EarlyStoppingPatience = 1,
    Progress = progress,
};
if (windows)
{
    linformer.LongInputs = LinformerLongInputs.Windows;
    Console.WriteLine($"long mails: encoded as windows of {SequenceLength} tokens (LongInputs = Windows)");
}
var pipeline = ml.Transforms.Linformer(linformer)                 // Text → Features (64), HeadScore, HeadProbability, HeadPredictedLabel
    .AppendCacheCheckpoint(ml)
    .Append(ml.BinaryClassification.Trainers.FastTree(labelColumnName: "Label", featureColumnName: "Features",
        numberOfLeaves: 8, numberOfTrees: 50, minimumExampleCountPerLeaf: 10));
var watch = Stopwatch.StartNew();
using var model = pipeline.Fit(train);
progress.Dispose();
Console.WriteLine($"trained in {watch.Elapsed.TotalSeconds:F0} s (encoder, then FastTree on its features)");
var predictions = model.Transform(test);

// (a) pooled encoding → FastTree: the trainer adds Score, Probability, PredictedLabel.
var pooled = ml.BinaryClassification.Evaluate(predictions, labelColumnName: "Label");

// (b) the encoder's own head: for a Boolean label it emits what ML.NET's binary trainers emit (log-odds score,
// probability, predicted label), so the evaluator reads it as it is.
var headMetrics = ml.BinaryClassification.Evaluate(predictions, "Label", "HeadScore", "HeadProbability", "HeadPredictedLabel");

// Reference: bag of word unigrams and bigrams → logistic regression (no neural network).
watch.Restart();
var ngramOptions = new TextFeaturizingEstimator.Options
{
    WordFeatureExtractor = new WordBagEstimator.Options { NgramLength = 2, UseAllLengths = true },
    CharFeatureExtractor = null,
};
var ngrams = ml.Transforms.Text.FeaturizeText("NGrams", ngramOptions, "Text")
    .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "NGrams"));
var classic = ngrams.Fit(train);
var classicMetrics = ml.BinaryClassification.Evaluate(classic.Transform(test), labelColumnName: "Label");
var classicSeconds = watch.Elapsed.TotalSeconds;

Console.WriteLine();
Console.WriteLine($"{"on " + testRows.Count + " test mails",-44} {"accuracy",9} {"AUC",7} {"F1",7}");
Print("(a) Linformer pooled encoding → FastTree", pooled);
Print("(b) Linformer classification head", headMetrics);
Print($"reference: n-grams → SDCA ({classicSeconds:F0} s)", classicMetrics);
Console.WriteLine($"total time: {total.Elapsed.TotalMinutes:F1} min");
if (arguments.Has(OnnxEncoderCheck.Flag)) OnnxEncoderCheck.Run(ml, model, test, "Label");
return 0;

static void Print(string name, BinaryClassificationMetrics m)
    => Console.WriteLine($"{name,-44} {m.Accuracy,9:F3} {m.AreaUnderRocCurve,7:F3} {m.F1Score,7:F3}");
