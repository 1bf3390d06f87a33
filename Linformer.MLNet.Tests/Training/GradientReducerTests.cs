using Linformer.MLNet.Tests.Hardening;
using Microsoft.ML;
using TorchSharp;

namespace Linformer.MLNet.Tests.Training;

/// <summary>
/// The data-parallel hook in one process, without MPI: a reducer of one process must leave training as it is, with
/// exactly one all-reduce per optimizer step carrying every gradient; bad reducers and empty shares are refused.
/// (Several processes: Distributed/DataParallelTrainingTests, under mpiexec.)
/// </summary>
[TestClass]
public sealed class GradientReducerTests
{
    /// <summary>A job of one process: the sum over all processes is the buffer itself. Records every call.</summary>
    private sealed class SingleProcess(int rank = 0, int processes = 1) : IGradientReducer
    {
        public List<int> Lengths { get; } = [];
        public int Rank => rank;
        public int ProcessCount => processes;
        public void AllReduceSum(float[] buffer) => Lengths.Add(buffer.Length);
    }

    private static LinformerEstimator.Options Options(IGradientReducer? reducer)
    {
        var options = Tiny.Options(epochs: 2);
        options.BatchSize = 8;
        options.Dropout = options.FeedForwardDropout = 0;
        options.GradientReducer = reducer;
        return options;
    }

    [TestMethod]
    public void AReducerOfOneProcessTrainsAsWithoutOneWithOneAllReducePerStep()
    {
        var data = new MLContext(seed: 2).Data.LoadFromEnumerable(Tiny.Rows(32, 4).ToList());   // 4 steps per epoch
        Dictionary<string, byte[]> expected, actual;
        using (var model = new MLContext(seed: 2).Transforms.Linformer(Options(null)).Fit(data)) expected = Tiny.Weights(model);
        var reducer = new SingleProcess();
        long parameters;
        using (var model = new MLContext(seed: 2).Transforms.Linformer(Options(reducer)).Fit(data))
        {
            actual = Tiny.Weights(model);
            parameters = model.Network.DistinctParameters().Sum(p => p.numel());
        }
        Tiny.AssertSameWeights(expected, actual, "with a reducer of one process vs without");   // batches of 8 rows: × 8 and ÷ 8 are exact
        // One call to agree on the steps per epoch (one float per process), one broadcast of the initial parameters,
        // then one call per optimizer step with every gradient, the step's rows and its loss sum.
        CollectionAssert.AreEqual(new[] { 1 }.Concat(Enumerable.Repeat((int)parameters + 2, 1 + 8)).ToArray(), reducer.Lengths.ToArray());
    }

    [TestMethod]
    public void AProcessWithoutRowsAndAnImpossibleRankAreRefused()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(2, 4).ToList());
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.Linformer(Options(new SingleProcess(rank: 2, processes: 3))).Fit(data));
        StringAssert.Contains(ex.Message, "Process 2 of 3 has no training rows");
        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(Options(new SingleProcess(rank: 3, processes: 3))));
        Assert.AreEqual("GradientReducer", bad.ParamName);
        StringAssert.Contains(bad.Message, "rank 3 of 3 processes");
    }
}
