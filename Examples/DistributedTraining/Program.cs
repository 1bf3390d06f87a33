// Data-parallel training across processes with MPI: every process reads its share of the sensor windows
// (Examples/data/sensor), computes the gradients of its batch, and one all-reduce per optimizer step averages them,
// so all processes end with the same model; process 0 evaluates it and saves it.
//
//   mpiexec -n 2 dotnet Examples/DistributedTraining/bin/Debug/net10.0/DistributedTraining.dll [--epochs 10] [--threads 1]
//   mpiexec -n 2 dotnet .../DistributedTraining.dll --measure      training rows/s and all-reduce time per step
//
// Without mpiexec it runs as a job of one process. See README.md beside this file for a cluster (hostfile).
using System.Diagnostics;
using Linformer.MLNet;
using Linformer.MLNet.Distributed;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

var arguments = new ExampleArgs(args);
torch.set_num_threads(arguments.Int("--threads", 1));
LinformerMpi.Run(args, reducer =>
{
    if (arguments.Has("--measure")) Measure(reducer, arguments.Int("--epochs", 3));
    else Train(reducer, arguments.Int("--epochs", 10));
});
return 0;

static LinformerEstimator.Options Options(IGradientReducer reducer, int epochs, IProgress<LinformerTrainingProgress>? progress) => new()
{
    InputColumnName = "Readings", OutputColumnName = "Encoding", LabelColumnName = "Label", ScoreColumnName = "Score",
    SequenceLength = 64, Channels = 2, ModelWidth = 32, Heads = 4, Depth = 2, FeedForwardSize = 64, ProjectedLength = 16,
    Dropout = 0, FeedForwardDropout = 0.1, Epochs = epochs, LearningRate = 2e-3,
    BatchSize = Math.Max(1, 32 / reducer.ProcessCount),          // 32 rows per optimizer step over all processes
    GradientReducer = reducer, Progress = progress,
};

static void Train(MpiGradientReducer reducer, int epochs)
{
    var ml = new MLContext(seed: 1);                              // the same seed everywhere: the same initial weights
    var folder = ExampleData.Folder("sensor");
    var train = ml.Data.LoadFromTextFile<Window>(Path.Combine(folder, "train.csv"), separatorChar: ',', hasHeader: true);
    var test = ml.Data.LoadFromTextFile<Window>(Path.Combine(folder, "test.csv"), separatorChar: ',', hasHeader: true);
    var progress = new Progress(p =>
    {
        if (p.IsEpochEnd) Console.WriteLine($"epoch {p.Epoch}/{p.Epochs}: training loss {p.TrainingLoss:F4}, {p.RowsPerSecond:F0} rows/s over {reducer.ProcessCount} process(es)");
    });
    var watch = Stopwatch.StartNew();
    using var model = ml.Transforms.Linformer(Options(reducer, epochs, progress)).Fit(train);
    if (reducer.Rank != 0) return;                               // every process has the same model; process 0 writes it
    var metrics = ml.BinaryClassification.Evaluate(model.Transform(test), labelColumnName: "Label");
    Console.WriteLine($"trained in {watch.Elapsed.TotalSeconds:F1} s on {reducer.ProcessCount} process(es), {reducer.AllReduceCalls} all-reduce calls ({reducer.AllReduceTime.TotalSeconds:F2} s in them on process 0)");
    Console.WriteLine($"test windows: accuracy {metrics.Accuracy:F3}, AUC {metrics.AreaUnderRocCurve:F3}, F1 {metrics.F1Score:F3}");
    var path = Path.Combine(AppContext.BaseDirectory, "distributed-model.zip");
    ml.Model.Save(model, train.Schema, path);
    Console.WriteLine($"model: {path}");
}

// Training throughput of this job, then the time of one all-reduce against the size of the model's gradients.
static void Measure(MpiGradientReducer reducer, int epochs)
{
    var ml = new MLContext(seed: 1);
    var train = ml.Data.LoadFromTextFile<Window>(Path.Combine(ExampleData.Folder("sensor"), "train.csv"), separatorChar: ',', hasHeader: true);
    double rowsPerSecond = 0;
    var counting = new CountingReducer(reducer);
    using (var model = ml.Transforms.Linformer(Options(counting, epochs, new Progress(p => rowsPerSecond = p.RowsPerSecond))).Fit(train))
        if (reducer.Rank == 0)
        {
            Console.WriteLine($"training: {reducer.ProcessCount} process(es) x {torch.get_num_threads()} thread(s): {rowsPerSecond:F0} rows/s ({epochs} epochs of 753 windows, N = 64 x 2, 32 rows per step)");
            Console.WriteLine($"gradient bucket: {counting.LargestBuffer} floats ({counting.LargestBuffer * 4.0 / 1024:F0} KiB); {counting.Calls} all-reduce calls, {counting.Time.TotalMilliseconds / counting.Calls:F2} ms each on average (waiting for the slower process included)");
        }

    if (reducer.Rank == 0) Console.WriteLine($"{"floats",12} {"MiB",8} {"ms per all-reduce",18}");
    foreach (int floats in new[] { 1 << 10, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24 })
    {
        var buffer = new float[floats];
        int repeats = Math.Clamp((1 << 24) / floats, 5, 200);
        reducer.AllReduceSum(buffer);                             // warm-up
        reducer.Barrier();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) reducer.AllReduceSum(buffer);
        reducer.Barrier();
        if (reducer.Rank == 0) Console.WriteLine($"{floats,12} {floats * 4.0 / (1 << 20),8:F3} {watch.Elapsed.TotalMilliseconds / repeats,18:F3}");
    }
}

/// <summary>Counts the calls, the time and the largest buffer of the reducer it wraps.</summary>
internal sealed class CountingReducer(IGradientReducer inner) : IGradientReducer
{
    public int LargestBuffer { get; private set; }
    public long Calls { get; private set; }
    public TimeSpan Time { get; private set; }
    public int Rank => inner.Rank;
    public int ProcessCount => inner.ProcessCount;

    public void AllReduceSum(float[] buffer)
    {
        long start = Stopwatch.GetTimestamp();
        inner.AllReduceSum(buffer);
        Time += Stopwatch.GetElapsedTime(start);
        Calls++;
        LargestBuffer = Math.Max(LargestBuffer, buffer.Length);
    }
}

internal sealed class Progress(Action<LinformerTrainingProgress> report) : IProgress<LinformerTrainingProgress>
{
    public void Report(LinformerTrainingProgress value) => report(value);
}

/// <summary>One row of sensor/train.csv or test.csv: the label and 64 (humidity, temperature) pairs.</summary>
internal sealed class Window
{
    [LoadColumn(0)] public bool Label { get; set; }
    [LoadColumn(1, 128), VectorType(128)] public float[] Readings { get; set; } = [];
}
