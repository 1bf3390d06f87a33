// Trains the spam pipeline (words → keys → Linformer → SDCA) with TorchSharp, swaps its Linformer for the same
// encoder running in ONNX Runtime (LinformerTransformer.ToOnnxRuntime) and saves both pipelines as ML.NET model zips:
// spam-onnx.zip for the scoring app (Examples/OnnxScoring/Scoring, which carries no libtorch) and spam-torch.zip.
// Then it compares, on the held-out mails: the two pipelines' outputs, and the encoder's rows/s in TorchSharp, in this
// package's ONNX Runtime transform and in ML.NET's ApplyOnnxModel on the same exported graph.
//
//   dotnet run --project Examples/OnnxScoring/Train -- [--quick] [--output dir]
using System.Diagnostics;
using System.Globalization;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

var options = new ExampleArgs(args);
bool quick = options.Has("--quick");
string output = options.Value("--output") ?? Directory.GetCurrentDirectory();
Directory.CreateDirectory(output);
string data = Path.Combine(AppContext.BaseDirectory, "data", "spam");

var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromEnumerable(SpamMail.Load(Path.Combine(data, "train.tsv"), perClass: quick ? 100 : int.MaxValue));
var testMails = SpamMail.Load(Path.Combine(data, "test.tsv"), perClass: quick ? 50 : int.MaxValue);
var test = ml.Data.LoadFromEnumerable(testMails);

// Variable-length word keys: rows are cut to N = 64 words or padded (and masked); unseen words read as the reserved
// unknown token.
var pipeline = ml.Transforms.Text.TokenizeIntoWords("Words", nameof(SpamMail.Text))
    .Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words", maximumNumberOfKeys: 5000))
    .Append(ml.Transforms.Linformer(new LinformerEstimator.Options
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = nameof(SpamMail.Label),
        SequenceLength = Encoding.N, ModelWidth = 32, ProjectedLength = 16, Heads = 4, Depth = 1, FeedForwardSize = 64,
        Epochs = quick ? 2 : 4, BatchSize = 16, LearningRate = 1e-3, Progress = new EpochLine(),
    }))
    .AppendCacheCheckpoint(ml)   // SDCA passes over the encodings several times: encode once
    .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(nameof(SpamMail.Label), "Features"));
var clock = Stopwatch.StartNew();
var torchModel = pipeline.Fit(train);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"trained on {train.GetRowCount()} mails in {clock.Elapsed.TotalSeconds:0} s"));

// The same pipeline with the Linformer step running its exported graph in ONNX Runtime.
var linformer = torchModel.OfType<LinformerTransformer>().Single();
using var onnx = linformer.ToOnnxRuntime();
var onnxModel = new TransformerChain<ITransformer>(torchModel.Select(t => t == linformer ? onnx : t).ToArray());
string onnxZip = Path.Combine(output, "spam-onnx.zip"), torchZip = Path.Combine(output, "spam-torch.zip"), graph = Path.Combine(output, "spam-linformer.onnx");
ml.Model.Save(onnxModel, train.Schema, onnxZip);
ml.Model.Save(torchModel, train.Schema, torchZip);
linformer.ExportToOnnx(graph);
Console.WriteLine($"saved {onnxZip} (ONNX Runtime), {torchZip} (TorchSharp) and the encoder graph {graph}");

// Outputs: the two pipelines on the held-out mails.
var torchScored = torchModel.Transform(test);
var onnxScored = onnxModel.Transform(test);
double featuresDiff = MaxAbs(torchScored.GetColumn<float[]>("Features").SelectMany(f => f), onnxScored.GetColumn<float[]>("Features").SelectMany(f => f));
double probabilityDiff = MaxAbs(torchScored.GetColumn<float>("Probability"), onnxScored.GetColumn<float>("Probability"));
var torchMetrics = ml.BinaryClassification.Evaluate(torchScored, nameof(SpamMail.Label));
var onnxMetrics = ml.BinaryClassification.Evaluate(onnxScored, nameof(SpamMail.Label));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{testMails.Count} test mails: accuracy {torchMetrics.Accuracy:0.000} (TorchSharp) / {onnxMetrics.Accuracy:0.000} (ONNX Runtime); max |ONNX Runtime - TorchSharp|: Features {featuresDiff:E2}, Probability {probabilityDiff:E2}"));

// Speed of the encoder alone, on the same key column (cached), same run, best of three passes each.
var keys = ml.Data.Cache(torchModel.Take(2).Aggregate(test, (view, step) => step.Transform(view)));
_ = keys.GetColumn<VBuffer<uint>>("Tokens").Count();
// ApplyOnnxModel feeds fixed-size tensor columns one row at a time: the ids (key k is id k − 1, a missing key the
// reserved unknown id V + 1) padded with V to N, and the mask, have to be made first, here by a CustomMapping.
int vocabulary = (int)((KeyDataViewType)((VectorDataViewType)keys.Schema["Tokens"].Type).ItemType).Count;
var prepared = ml.Data.Cache(ml.Transforms.Conversion.ConvertType("TokenValues", "Tokens", DataKind.UInt32)
    .Append(ml.Transforms.CustomMapping<Encoding.Keys, Encoding.Tensors>((k, t) => Encoding.Fill(k, t, vocabulary), contractName: null))
    .Fit(keys).Transform(keys));
_ = prepared.GetColumn<long[]>("input").Count();
using var applyOnnx = ml.Transforms.ApplyOnnxModel(["features"], ["input", "mask"], graph).Fit(prepared);
double applyDiff = MaxAbs(linformer.Transform(keys).GetColumn<float[]>("Features").SelectMany(f => f), applyOnnx.Transform(prepared).GetColumn<float[]>("features").SelectMany(f => f));

double torchRate = RowsPerSecond(() => linformer.Transform(keys), "Features");
double onnxRate = RowsPerSecond(() => onnx.Transform(keys), "Features");
double applyRate = RowsPerSecond(() => applyOnnx.Transform(prepared), "features");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
    encoder rows/s on {testMails.Count} mails (N = {Encoding.N}, same graph, same run):
      TorchSharp LinformerTransformer   {torchRate,8:0}
      LinformerOnnxTransformer          {onnxRate,8:0}   ({onnxRate / torchRate:0.00}x TorchSharp)
      ML.NET ApplyOnnxModel             {applyRate,8:0}   ({applyRate / onnxRate:0.00}x LinformerOnnxTransformer; max |diff| {applyDiff:E2})
    """));
return 0;

double RowsPerSecond(Func<IDataView> encode, string column)
{
    double best = double.MaxValue;
    for (int pass = 0; pass < 3; pass++)
    {
        var watch = Stopwatch.StartNew();
        using (var cursor = encode().GetRowCursor(encode().Schema.Where(c => c.Name == column)))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(cursor.Schema[column]);
            VBuffer<float> value = default;
            while (cursor.MoveNext()) getter(ref value);
        }
        best = Math.Min(best, watch.Elapsed.TotalSeconds);
    }
    return testMails.Count / best;
}

static double MaxAbs(IEnumerable<float> a, IEnumerable<float> b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

/// <summary>Prints one line per finished epoch.</summary>
internal sealed class EpochLine : IProgress<LinformerTrainingProgress>
{
    public void Report(LinformerTrainingProgress value)
    {
        if (value.IsEpochEnd)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {value.Epoch}/{value.Epochs}: loss {value.TrainingLoss:0.000}, {value.RowsPerSecond:0} rows/s"));
    }
}

internal static class Encoding
{
    public const int N = 64;

    public sealed class Keys
    {
        public VBuffer<uint> TokenValues { get; set; }
    }

    public sealed class Tensors
    {
        [VectorType(N)] public long[] input { get; set; } = new long[N];
        [VectorType(N)] public bool[] mask { get; set; } = new bool[N];
    }

    /// <summary>What the Linformer transform does itself for a variable-length key column (keep the first N).</summary>
    public static void Fill(Keys keys, Tensors tensors, int vocabulary)
    {
        var values = keys.TokenValues.DenseValues().ToArray();
        tensors.input = new long[N];
        tensors.mask = new bool[N];
        for (int i = 0; i < N; i++)
        {
            bool real = i < values.Length;
            tensors.input[i] = !real ? vocabulary : values[i] == 0 ? vocabulary + 1 : values[i] - 1L;
            tensors.mask[i] = real;
        }
    }
}
