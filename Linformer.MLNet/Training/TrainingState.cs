using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// Where a training run is between two optimizer steps, besides its weights, optimizer moments and random generators:
/// the step, the epoch and how many of its rows were trained on (the epoch's order follows from the seed and the epoch,
/// see <see cref="ShuffledRows"/>), the loss so far, and early stopping's
/// best weights and counters. The loop keeps its position here and nowhere else, and <see cref="Write"/> and
/// <see cref="Read"/> are the only code that stores it, so a checkpoint holds exactly what the loop uses.
/// </summary>
internal sealed class TrainingState : IDisposable
{
    public long Step { get; set; }
    /// <summary>1-based epoch in progress.</summary>
    public int Epoch { get; set; } = 1;
    /// <summary>Rows of the epoch's order trained on so far; -1 at the start of an epoch (not yet begun).</summary>
    public int NextStart { get; set; } = -1;
    public long RowsSeen { get; set; }
    /// <summary>Sum of loss × rows over the epoch so far.</summary>
    public double LossSum { get; set; }
    /// <summary>Rows in <see cref="LossSum"/>.</summary>
    public int LossCount { get; set; }
    public double BestLoss { get; set; } = double.PositiveInfinity;
    public int EpochsWithoutImprovement { get; set; }
    /// <summary>Early stopping's best weights (CPU or device copies, owned by this object), or null.</summary>
    public Dictionary<string, Tensor>? Best { get; private set; }

    /// <summary>Replaces the best weights (and disposes the old ones).</summary>
    public void SetBest(Dictionary<string, Tensor>? best)
    {
        DisposeBest();
        Best = best;
    }

    public void Write(BinaryWriter w)
    {
        w.Write(Step); w.Write(Epoch); w.Write(NextStart); w.Write(RowsSeen); w.Write(LossSum); w.Write(LossCount);
        w.Write(BestLoss); w.Write(EpochsWithoutImprovement);
        w.Write(Best is not null);
        if (Best is not null) TrainingCheckpoint.WriteBytes(w, TrainingCheckpoint.Serialize(Best));
    }

    public static TrainingState Read(BinaryReader r)
    {
        var state = new TrainingState
        {
            Step = r.ReadInt64(), Epoch = r.ReadInt32(), NextStart = r.ReadInt32(), RowsSeen = r.ReadInt64(),
            LossSum = r.ReadDouble(), LossCount = r.ReadInt32(),
        };
        state.BestLoss = r.ReadDouble();
        state.EpochsWithoutImprovement = r.ReadInt32();
        if (r.ReadBoolean()) state.Best = TrainingCheckpoint.Deserialize(TrainingCheckpoint.ReadBytes(r));
        return state;
    }

    private void DisposeBest()
    {
        if (Best is null) return;
        foreach (var t in Best.Values) t.Dispose();
        Best = null;
    }

    public void Dispose() => DisposeBest();
}
