// Trains a tiny Linformer and saves it, alone or as one process of an MPI job.
//   train <model-zip> <batch-size> [--mpi]      32 rows, 10 epochs of one optimizer step each (dropout 0)
//   fail                                          under mpiexec: process 1 meets a NaN label in its rows and throws
using System.Globalization;
using Linformer.MLNet;
using Linformer.MLNet.Distributed;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

const int N = 16, Vocabulary = 8;
torch.set_num_threads(1);

switch (args.FirstOrDefault())
{
    case "train" when args.Length >= 3:
        string path = args[1];
        int batchSize = int.Parse(args[2], CultureInfo.InvariantCulture);
        if (args.Contains("--mpi")) LinformerMpi.Run(args, reducer => Train(path, batchSize, reducer));
        else Train(path, batchSize, null);
        return 0;
    case "fail":
        LinformerMpi.Run(args, reducer =>
        {
            var ml = new MLContext(seed: 3);
            var rows = Rows(32).Select((r, i) => new RegressionRow { Tokens = r.Tokens, Target = i == 1 ? float.NaN : i }).ToList();
            var options = Options(16, reducer);
            options.LabelColumnName = "Target";
            Console.WriteLine($"process {reducer.Rank} of {reducer.ProcessCount}: training");
            using var model = ml.Transforms.Linformer(options).Fit(ml.Data.LoadFromEnumerable(rows));
            Console.WriteLine($"process {reducer.Rank}: done");
        });
        return 0;
    default:
        Console.Error.WriteLine("usage: DistributedHost train <model-zip> <batch-size> [--mpi] | fail");
        return 2;
}

static void Train(string path, int batchSize, IGradientReducer? reducer)
{
    var ml = new MLContext(seed: 3);
    var data = ml.Data.LoadFromEnumerable(Rows(32).ToList());
    var options = Options(batchSize, reducer);
    using var model = ml.Transforms.Linformer(options).Fit(data);
    if (reducer is { Rank: > 0 }) return;   // every process holds the same weights; process 0 saves the model
    ml.Model.Save(model, data.Schema, path);
    Console.WriteLine($"model written by process {reducer?.Rank ?? 0} of {reducer?.ProcessCount ?? 1}");
}

static LinformerEstimator.Options Options(int batchSize, IGradientReducer? reducer) => new()
{
    InputColumnName = "Tokens", OutputColumnName = "Features", LabelColumnName = "Label", VocabularySize = Vocabulary,
    ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16, Dropout = 0, FeedForwardDropout = 0,
    Epochs = 10, BatchSize = batchSize, LearningRate = 1e-2, WarmupFraction = 0.2, GradientClipNorm = 0.05,
    GradientReducer = reducer,
};

static IEnumerable<Row> Rows(int count)
{
    var random = new Random(11);
    for (int i = 0; i < count; i++)
    {
        var tokens = new int[N];
        for (int p = 0; p < N; p++) tokens[p] = random.Next(Vocabulary);
        yield return new Row { Tokens = tokens, Label = tokens[0] < Vocabulary / 2 };
    }
}

internal sealed class Row
{
    [VectorType(16)] public int[] Tokens { get; set; } = [];
    public bool Label { get; set; }
}

internal sealed class RegressionRow
{
    [VectorType(16)] public int[] Tokens { get; set; } = [];
    public float Target { get; set; }
}
