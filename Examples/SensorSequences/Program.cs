// Float sequences: windows of 64 readings × 2 channels (humidity, temperature) from a real wireless sensor network
// (Examples/data/sensor); does a window contain an anomaly? The column is Vector<Single, 128> = (64, 2) row-major,
// the seed's (batch, n, channels) input style. A Linformer encoder trained with the label turns each window into a
// 32-number encoding, logistic regression classifies it, and ML.NET's evaluator scores it on windows from two
// other motes. The same evaluation of a standard trainer on the raw 128 numbers is the honest baseline.
//
//   dotnet run --project Examples/SensorSequences [-- --quick] [--onnx-int8]
//
// --quick: 6 epochs instead of 40 (a smoke test); --onnx-int8 also scores the encoder with ONNX Runtime in float32 and
// int8 and evaluates the logistic regression on those encodings (docs/onnx.md).
using System.Diagnostics;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;

var arguments = new ExampleArgs(args);
bool quick = arguments.Has("--quick");

var ml = new MLContext(seed: 1);
var folder = ExampleData.Folder("sensor");
var train = ml.Data.LoadFromTextFile<Window>(Path.Combine(folder, "train.csv"), separatorChar: ',', hasHeader: true);
var test = ml.Data.LoadFromTextFile<Window>(Path.Combine(folder, "test.csv"), separatorChar: ',', hasHeader: true);
int Count(IDataView d, bool label) => d.GetColumn<bool>("Label").Count(l => l == label);
Console.WriteLine($"data: {Count(train, true) + Count(train, false)} training windows ({Count(train, true)} with an anomaly, motes 1 and 3), " +
                  $"{Count(test, true) + Count(test, false)} test windows ({Count(test, true)} with an anomaly, motes 2 and 4); N = 64 steps × 2 channels");

var total = Stopwatch.StartNew();
var progress = new TrainingProgressView("Linformer");
var options = new LinformerEstimator.Options
{
    InputColumnName = "Readings", OutputColumnName = "Encoding", LabelColumnName = "Label",
    SequenceLength = 64, Channels = 2,                     // Vector<Single, 128> read as (64, 2)
    ModelWidth = 32, Heads = 4, Depth = 2, FeedForwardSize = 64, ProjectedLength = 16,
    Precision = arguments.Precision,   // --bf16: mixed-precision training and bf16 inference (README, "Precision")
    PositionEmbedding = PositionEmbedding.Learned,
    Dropout = 0, FeedForwardDropout = 0.1,
    Epochs = quick ? 6 : 40, BatchSize = 32, LearningRate = 2e-3,
    ValidationFraction = 0.15, EarlyStoppingPatience = 8,
    Progress = progress,
};
var linformer = ml.Transforms.Linformer(options)
    .AppendCacheCheckpoint(ml)
    .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "Encoding"));
var watch = Stopwatch.StartNew();
using var model = linformer.Fit(train);
progress.Dispose();
var linformerSeconds = watch.Elapsed.TotalSeconds;
var linformerMetrics = ml.BinaryClassification.Evaluate(model.Transform(test), labelColumnName: "Label");

// Baselines on the raw, flattened 128 numbers.
var raw = new (string Name, IEstimator<ITransformer> Trainer)[]
{
    ("raw 128 values → SDCA logistic regression", ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "Readings")),
    ("raw 128 values → FastTree", ml.BinaryClassification.Trainers.FastTree(labelColumnName: "Label", featureColumnName: "Readings")),
};

Console.WriteLine();
Console.WriteLine($"{"on the test windows",-44} {"accuracy",9} {"AUC",7} {"F1",7} {"train",7}");
Print("Linformer encoding → SDCA logistic regression", linformerMetrics, linformerSeconds);
foreach (var (name, trainer) in raw)
{
    watch.Restart();
    var fitted = trainer.Fit(train);
    var seconds = watch.Elapsed.TotalSeconds;
    Print(name, ml.BinaryClassification.Evaluate(fitted.Transform(test), labelColumnName: "Label"), seconds);
}
Console.WriteLine($"(always answering 'no anomaly' scores accuracy {Count(test, false) / (double)(Count(test, true) + Count(test, false)):F3}, F1 0)");
Console.WriteLine($"total time: {total.Elapsed.TotalMinutes:F1} min");
if (arguments.Has(OnnxEncoderCheck.Flag)) OnnxEncoderCheck.Run(ml, model, test, "Label");
return 0;

static void Print(string name, BinaryClassificationMetrics m, double seconds)
    => Console.WriteLine($"{name,-44} {m.Accuracy,9:F3} {m.AreaUnderRocCurve,7:F3} {m.F1Score,7:F3} {seconds,6:F1}s");

/// <summary>One row of sensor/train.csv or test.csv: the label and 64 (humidity, temperature) pairs.</summary>
internal sealed class Window
{
    [LoadColumn(0)] public bool Label { get; set; }
    [LoadColumn(1, 128), VectorType(128)] public float[] Readings { get; set; } = [];
}
