using System.Diagnostics;
using MPI;

namespace Linformer.MLNet.Distributed;

/// <summary>
/// <see cref="IGradientReducer"/> over an MPI communicator: each <see cref="AllReduceSum"/> is one
/// <c>MPI_Allreduce</c> with <c>MPI_SUM</c> on floats. Made by <see cref="LinformerMpi.Run"/>; set it as
/// <see cref="LinformerEstimator.Options.GradientReducer"/> in every process.
/// </summary>
public sealed class MpiGradientReducer : IGradientReducer
{
    private readonly Intracommunicator communicator;
    private float[] sums = [];

    internal MpiGradientReducer(Intracommunicator communicator) => this.communicator = communicator;

    /// <inheritdoc/>
    public int Rank => communicator.Rank;

    /// <inheritdoc/>
    public int ProcessCount => communicator.Size;

    /// <summary>All-reduce calls made so far.</summary>
    public long AllReduceCalls { get; private set; }

    /// <summary>Time spent in all-reduce calls so far (waiting for the slowest process included).</summary>
    public TimeSpan AllReduceTime { get; private set; }

    /// <inheritdoc/>
    public void AllReduceSum(float[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (sums.Length != buffer.Length) sums = new float[buffer.Length];
        long start = Stopwatch.GetTimestamp();
        communicator.Allreduce(buffer, Operation<float>.Add, ref sums);
        AllReduceTime += Stopwatch.GetElapsedTime(start);
        AllReduceCalls++;
        sums.CopyTo(buffer, 0);
    }

    /// <summary>Waits until every process has reached this call.</summary>
    public void Barrier() => communicator.Barrier();
}
