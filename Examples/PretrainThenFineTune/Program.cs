// Pretrain, then fine-tune: the Linformer paper's recipe on e-mails. A Linformer encoder first learns from text alone
// (masked tokens: 15% of each mail's tokens are hidden and predicted back, no labels) on the unlabelled SpamAssassin
// mails and the training mails' texts; it is saved as an ML.NET model zip. Then the zip is loaded and the encoder is
// fine-tuned with the labels (InitialModel) on the 1,200 labelled training mails. On the same 400 test mails it is
// compared with the same model trained from scratch and with a bag-of-n-grams logistic regression.
//
//   dotnet run --project Examples/PretrainThenFineTune [-- --quick] [--pretrain-epochs <n>] [--output <folder>]
//
// --quick: 100 unlabelled mails, 100 training and 25 test mails per class, 1 + 3 epochs (a smoke test);
// --pretrain-epochs: passes over the pre-training mails (default 2); --output: where pretrained-encoder.zip is
// written (default: next to the program).
using System.Diagnostics;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

var arguments = new ExampleArgs(args);
bool quick = arguments.Has("--quick");
int supervisedEpochs = quick ? 3 : 4;
int pretrainEpochs = arguments.Int("--pretrain-epochs", quick ? 1 : 2);
string outputFolder = arguments.Value("--output") ?? AppContext.BaseDirectory;

var ml = new MLContext(seed: 1);
var spam = ExampleData.Folder("spam");
var trainMails = SpamMail.Load(Path.Combine(spam, "train.tsv"), quick ? 100 : int.MaxValue);
var testMails = SpamMail.Load(Path.Combine(spam, "test.tsv"), quick ? 25 : int.MaxValue);
var unlabelledTexts = File.ReadLines(Path.Combine(spam, "unlabelled.tsv")).Skip(1).Take(quick ? 100 : int.MaxValue).ToList();

// Pre-training reads the unlabelled mails and the training mails' texts (not their labels); never a test mail.
var pretrainTexts = unlabelledTexts.Concat(trainMails.Select(m => m.Text)).ToList();
var unlabelled = ml.Data.LoadFromEnumerable(pretrainTexts.Select(MailTokens.Unlabelled).ToList());   // tokenised once, read every epoch
var train = ml.Data.LoadFromEnumerable(trainMails.Select(MailTokens.Labelled).ToList());
var test = ml.Data.LoadFromEnumerable(testMails.Select(MailTokens.Labelled).ToList());
Console.WriteLine($"data: {unlabelledTexts.Count} unlabelled mails + the texts of {trainMails.Count} training mails for pre-training; " +
                  $"{trainMails.Count} labelled training mails ({trainMails.Count(m => m.Label)} spam), {testMails.Count} test mails ({testMails.Count(m => m.Label)} spam)");
Console.WriteLine($"tokens: GPT-2, N = {MailTokens.SequenceLength} per mail, padding id {Gpt2Tokens.PaddingId}");

// One encoder shape for all: the pretrained model hands its settings on to fine-tuning, scratch uses the same ones.
LinformerEstimator.Options Encoder(string title) => new()
{
    InputColumnName = "Tokens", OutputColumnName = "Features",
    VocabularySize = Gpt2Tokens.VocabularySize, PaddingTokenId = Gpt2Tokens.PaddingId,
    ReserveSpecialTokens = true,   // a mask id of its own (GPT-2's 50257 ids + padding, unknown, mask): BERT's masking rule
    ModelWidth = 64, Heads = 4, Depth = 1, FeedForwardSize = 128, ProjectedLength = 64,
    Precision = arguments.Precision,
    Dropout = 0, FeedForwardDropout = 0.1,   // attention dropout would take libtorch off its fused attention kernel
    BatchSize = 16, LearningRate = 1e-3,
    Progress = new TrainingProgressView(title),
};

// The supervised settings, shared by fine-tuning and scratch: the encoder's own classification head, scored directly.
LinformerEstimator.Options Supervised(string title, LinformerTransformer? initial)
{
    var o = Encoder(title);
    o.LabelColumnName = "Label";
    o.ScoreColumnName = "Score";   // + Probability, PredictedLabel: what BinaryClassification.Evaluate reads
    o.Epochs = supervisedEpochs;
    o.ValidationFraction = 0.1;
    o.EarlyStoppingPatience = 1;   // the epoch with the best validation loss is kept
    o.InitialModel = initial;
    return o;
}

var total = Stopwatch.StartNew();

// 1. Self-supervised pre-training: no label column, so Fit trains the masked-token objective.
Console.WriteLine();
Console.WriteLine("== pre-training (masked tokens, no labels) ==");
var pretraining = Encoder("pre-training");
pretraining.Epochs = pretrainEpochs;
pretraining.ValidationFraction = 0.05;   // reports masked-token accuracy on held-out mails after each epoch
var watch = Stopwatch.StartNew();
Directory.CreateDirectory(outputFolder);
string pretrainedPath = Path.GetFullPath(Path.Combine(outputFolder, "pretrained-encoder.zip"));
float[][] pretrainedFeatures;
using (var pretrainedModel = ml.Transforms.Linformer(pretraining).Fit(unlabelled))
{
    ml.Model.Save(pretrainedModel, unlabelled.Schema, pretrainedPath);
    pretrainedFeatures = Features(pretrainedModel);
}
((IDisposable)pretraining.Progress!).Dispose();
var pretrainTime = watch.Elapsed;
Console.WriteLine($"pre-trained on {pretrainTexts.Count} mails for {pretrainEpochs} epoch(s) in {pretrainTime.TotalSeconds:F0} s; saved: {pretrainedPath}");

// 2. Fine-tuning: load the saved encoder (as another process would) and train it further with the labels.
Console.WriteLine();
Console.WriteLine("== fine-tuning the pretrained encoder ==");
watch.Restart();
using var loaded = (LinformerTransformer)ml.Model.Load(pretrainedPath, out _);
var reloadedFeatures = Features(loaded);
double maxDifference = pretrainedFeatures.Zip(reloadedFeatures, (a, b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max()).Max();
Console.WriteLine($"loaded the saved encoder: max |feature difference| on {reloadedFeatures.Length} test mails = {maxDifference:E2}");
var fineTuned = Train("fine-tuned", loaded);
var fineTuneTime = watch.Elapsed;

// 3. The same model and settings from random weights.
Console.WriteLine();
Console.WriteLine("== the same model from scratch ==");
watch.Restart();
var scratch = Train("scratch", null);
var scratchTime = watch.Elapsed;

// 4. Reference: bag of word unigrams and bigrams → SDCA logistic regression (as in TextClassification).
watch.Restart();
var ngramOptions = new TextFeaturizingEstimator.Options
{
    WordFeatureExtractor = new WordBagEstimator.Options { NgramLength = 2, UseAllLengths = true },
    CharFeatureExtractor = null,
};
var ngrams = ml.Transforms.Text.FeaturizeText("NGrams", ngramOptions, "Text")
    .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "NGrams"))
    .Fit(ml.Data.LoadFromEnumerable(trainMails));
var ngramMetrics = ml.BinaryClassification.Evaluate(ngrams.Transform(ml.Data.LoadFromEnumerable(testMails)), labelColumnName: "Label");
var ngramTime = watch.Elapsed;

Console.WriteLine();
Console.WriteLine($"same encoder for both Linformer rows: N = {MailTokens.SequenceLength}, width 64, 1 layer, 4 heads, k = 64, batch 16; " +
                  $"supervised: {supervisedEpochs} epochs at most, early stopping");
Console.WriteLine($"{"on " + testMails.Count + " test mails",-40} {"accuracy",9} {"AUC",7} {"F1",7} {"time",8}");
Print($"Linformer pretrained + fine-tuned", fineTuned, pretrainTime + fineTuneTime);
Console.WriteLine($"{"  of which pre-training / fine-tuning",-40} {"",9} {"",7} {"",7} {pretrainTime.TotalSeconds,7:F1}s / {fineTuneTime.TotalSeconds:F1}s");
Print("Linformer from scratch", scratch, scratchTime);
Print("reference: n-grams → SDCA", ngramMetrics, ngramTime);
Console.WriteLine("time: Fit and evaluation (pretrained: pre-training, saving, loading, fine-tuning and evaluation)");
Console.WriteLine($"total time: {total.Elapsed.TotalMinutes:F1} min");
return 0;

BinaryClassificationMetrics Train(string name, LinformerTransformer? initial)
{
    var options = Supervised(name, initial);
    using var model = ml.Transforms.Linformer(options).Fit(train);
    ((IDisposable)options.Progress!).Dispose();
    var metrics = ml.BinaryClassification.Evaluate(model.Transform(test), labelColumnName: "Label");
    Console.WriteLine($"{name}: accuracy {metrics.Accuracy:F3}, AUC {metrics.AreaUnderRocCurve:F3}, F1 {metrics.F1Score:F3} on {testMails.Count} test mails");
    return metrics;
}

// The pooled encodings of the test mails.
float[][] Features(ITransformer model) => model.Transform(test).GetColumn<float[]>("Features").ToArray();

static void Print(string name, BinaryClassificationMetrics m, TimeSpan time)
    => Console.WriteLine($"{name,-40} {m.Accuracy,9:F3} {m.AreaUnderRocCurve,7:F3} {m.F1Score,7:F3} {time.TotalSeconds,7:F1}s");

/// <summary>
/// Text → tokens, in this one place: GPT-2 ids (Examples/Shared), the first N of each mail, padded with
/// <see cref="Gpt2Tokens.PaddingId"/>. A text-column tokenizer inside the Linformer transform would replace it.
/// </summary>
internal static class MailTokens
{
    public const int SequenceLength = 256;   // must match the [VectorType] below

    public static UnlabelledRow Unlabelled(string text) => new() { Tokens = Encode(text) };

    public static LabelledRow Labelled(SpamMail mail) => new() { Label = mail.Label, Tokens = Encode(mail.Text) };

    private static int[] Encode(string text)
    {
        var ids = new int[SequenceLength];
        Gpt2Tokens.Encode(text, ids);
        return ids;
    }
}

/// <summary>A mail's tokens (<c>Vector&lt;Int32, 256&gt;</c>), for pre-training.</summary>
internal sealed class UnlabelledRow
{
    [VectorType(MailTokens.SequenceLength)] public int[] Tokens { get; set; } = [];
}

/// <summary>A mail's tokens and whether it is spam.</summary>
internal sealed class LabelledRow
{
    public bool Label { get; set; }

    [VectorType(MailTokens.SequenceLength)] public int[] Tokens { get; set; } = [];
}
