// Public vocabulary of the ML.NET face: root namespace, file beside the training loop (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>Progress of <c>LinformerEstimator.Fit</c>, reported after every optimizer step (<see cref="IsEpochEnd"/> false) and at the end of every epoch (true, with the validation figures).</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Epochs planned.</param>
/// <param name="Step">Optimizer steps so far.</param>
/// <param name="TotalSteps">Optimizer steps planned.</param>
/// <param name="TrainingLoss">Mean training loss of the epoch so far.</param>
/// <param name="ValidationLoss">Validation loss at the end of the epoch, if a validation set is used.</param>
/// <param name="ValidationMetric">Validation accuracy (classification), mean squared error (regression) or masked-position accuracy / error (self-supervised), if a validation set is used.</param>
/// <param name="RowsPerSecond">Training throughput so far.</param>
/// <param name="Remaining">Estimated time to finish.</param>
/// <param name="IsEpochEnd">True for the report at the end of an epoch.</param>
public sealed record LinformerTrainingProgress(int Epoch, int Epochs, long Step, long TotalSteps, double TrainingLoss,
    double? ValidationLoss, double? ValidationMetric, double RowsPerSecond, TimeSpan Remaining, bool IsEpochEnd);
