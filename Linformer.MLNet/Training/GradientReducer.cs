// Public vocabulary of the ML.NET face: root namespace, file beside the training loop (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>
/// Joins the processes of a data-parallel training run (for example the ranks of an MPI job; the package
/// <c>Linformer.MLNet.Distributed</c> implements it on MPI). With <see cref="LinformerEstimator.Options.GradientReducer"/>
/// set, <c>Fit</c> in every process reads only the rows whose position modulo <see cref="ProcessCount"/> is
/// <see cref="Rank"/>, computes the gradients of its own batch, and the gradients are averaged over all processes with
/// one <see cref="AllReduceSum"/> per optimizer step, so every process applies the same update and ends with the same
/// weights. Process 0 alone reports progress.
/// </summary>
/// <remarks>
/// Every process must call <c>Fit</c> with the same options, seed and data (each reads its own share of it). A process
/// that fails must stop the others (an MPI implementation aborts the job), or they would wait forever for its gradients.
/// </remarks>
public interface IGradientReducer
{
    /// <summary>This process's number, from 0 to <see cref="ProcessCount"/> − 1.</summary>
    int Rank { get; }

    /// <summary>Processes in the run (1 or more).</summary>
    int ProcessCount { get; }

    /// <summary>
    /// Replaces every element of <paramref name="buffer"/> by its sum over all processes. Every process calls it the
    /// same number of times, in the same order, with buffers of the same length.
    /// </summary>
    /// <param name="buffer">This process's values in; the sums out.</param>
    void AllReduceSum(float[] buffer);
}
