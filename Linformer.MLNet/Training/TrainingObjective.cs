using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>One batch of training rows with their labels (those of the objective in use).</summary>
internal sealed class LabelledBatch(InputBinding binding, int capacity)
{
    public SequenceBatch Rows { get; } = new(binding, capacity);
    /// <summary>0-based classes of a classification objective.</summary>
    public long[] ClassLabels { get; } = new long[capacity];
    /// <summary>Targets of a regression objective.</summary>
    public float[] RegressionTargets { get; } = new float[capacity];
    public int Capacity => Rows.Capacity;
    public int Count => Rows.Count;

    /// <summary>Copies row <paramref name="from"/> of <paramref name="source"/> (sequence, mask and labels) into slot <paramref name="to"/>.</summary>
    public void CopyRow(LabelledBatch source, int from, int to)
    {
        Rows.CopyRow(source.Rows, from, to);
        ClassLabels[to] = source.ClassLabels[from];
        RegressionTargets[to] = source.RegressionTargets[from];
    }
}

/// <summary>
/// What training minimises for one kind of model. A new objective is one class deriving from this one plus a line in
/// <see cref="For"/>; the training loop does not change.
/// </summary>
internal abstract class TrainingObjective
{
    /// <summary>The per-batch metric reported beside the loss (e.g. "accuracy").</summary>
    public abstract string MetricName { get; }

    /// <summary>The loss of one batch (a scalar tensor that the loop back-propagates); <paramref name="metric"/> gets the batch's metric.</summary>
    public abstract Tensor Loss(LinformerNetwork network, LabelledBatch batch, Device device, out double metric);

    /// <summary>The objective of a network: its supervised head's, or the self-supervised one of its input kind.</summary>
    /// <param name="spec">The network's spec.</param>
    /// <param name="maskingProbability">Share of positions the self-supervised objectives mask.</param>
    /// <param name="generator">Draws the self-supervised objectives' masks (saved in checkpoints).</param>
    public static TrainingObjective For(NetworkSpec spec, double maskingProbability, Generator generator) => spec.Head switch
    {
        HeadKind.Classification => new ClassificationObjective(),
        HeadKind.Regression => new RegressionObjective(),
        _ when spec.UsesTokens => new MaskedTokenObjective(maskingProbability, generator, TokenLayout.Of(spec)),
        _ => new MaskedPositionObjective(maskingProbability, generator),
    };
}
