using System.Diagnostics;
using System.Globalization;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>Marks a <see cref="TrainerSettings"/> property that does not change what a run computes, so a checkpoint may be resumed with another value.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class NotInCheckpointIdentityAttribute : Attribute;

/// <summary>
/// Settings of one training run (validated by the estimator's options). Every property is part of a checkpoint's
/// identity (<see cref="TrainingCheckpoint.IdentityOf"/>) unless marked <see cref="NotInCheckpointIdentityAttribute"/>.
/// </summary>
internal sealed record TrainerSettings
{
    public int Epochs { get; init; }
    public int BatchSize { get; init; }
    public double LearningRate { get; init; }
    public double WarmupFraction { get; init; }
    public LearningRateDecay LearningRateDecay { get; init; }
    public double WeightDecay { get; init; }
    public double GradientClipNorm { get; init; }
    /// <summary>The run's seed: the <c>MLContext</c> seed, else the options' <c>Seed</c>.</summary>
    public int Seed { get; init; }
    public int EarlyStoppingPatience { get; init; }
    public double MaskingProbability { get; init; }
    /// <summary>Precision of the products (mixed precision with BFloat16); part of the identity: a resume must round as the run did.</summary>
    public LinformerPrecision Precision { get; init; }
    /// <summary>Rows in the shuffle buffer that draws each epoch's order (<see cref="ShuffledRows"/>); 0 = every training row (a full shuffle).</summary>
    public int ShuffleBufferSize { get; init; }
    /// <summary>Batches whose gradients are summed (weighted by their rows) before one optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>The processes of a data-parallel run, or null. Each process's checkpoint holds the fingerprint of its own share of the rows, so a resume with another process count or rank is rejected.</summary>
    [NotInCheckpointIdentity] public IGradientReducer? GradientReducer { get; init; }
    [NotInCheckpointIdentity] public IProgress<LinformerTrainingProgress>? Progress { get; init; }
    [NotInCheckpointIdentity] public Action<string>? Log { get; init; }
    /// <summary>Throws to cancel (ML.NET's host check, the options' cancellation token); called between batches.</summary>
    [NotInCheckpointIdentity] public Action? CheckAlive { get; init; }
    /// <summary>Checkpoint file, or null.</summary>
    [NotInCheckpointIdentity] public string? CheckpointPath { get; init; }
    /// <summary>Steps between checkpoints; 0 = none.</summary>
    [NotInCheckpointIdentity] public int CheckpointInterval { get; init; }
    /// <summary>Continue from <see cref="CheckpointPath"/> when it exists.</summary>
    [NotInCheckpointIdentity] public bool Resume { get; init; }
}

/// <summary>
/// The training loop: AdamW, linear warm-up then decay, gradient clipping, supervised (cross-entropy / MSE) or
/// self-supervised objectives (masked-token prediction, masked-position reconstruction), optional validation with
/// early stopping (the best epoch's weights are kept). Stops with a clear error when the loss stops being finite.
/// </summary>
internal static class LinformerTrainer
{
    public static void Train(LinformerNetwork network, Device device, TrainingRows train, TrainingRows? validation, TrainerSettings s)
    {
        var spec = network.Spec;
        if (train.Count == 0) throw new InvalidOperationException("The training data has no rows.");
        network.Precision = s.Precision;   // the forward and backward of the products follow it; weights and AdamW stay float32
        var parameters = network.DistinctParameters().ToList();
        using var optimizer = optim.AdamW(parameters, lr: s.LearningRate, weight_decay: s.WeightDecay);
        var reducer = s.GradientReducer;
        var bucket = reducer is null ? null : new GradientBucket(parameters, reducer);
        bool reports = reducer is null || reducer.Rank == 0;
        var progressSink = reports ? s.Progress : null;
        var log = reports ? s.Log : null;
        int rowsPerStep = checked(s.BatchSize * s.GradientAccumulationSteps);
        // One optimizer step takes up to GradientAccumulationSteps batches; in a data-parallel run every process makes
        // as many steps per epoch as the process with the most rows (one with fewer adds no rows to its last steps).
        long stepsPerEpoch = StepsPerEpoch(train.Count, rowsPerStep, reducer);
        long totalSteps = stepsPerEpoch * s.Epochs;
        long warmup = (long)Math.Round(totalSteps * s.WarmupFraction);
        int seed = RankSeed(s.Seed, reducer);
        if (reducer is { Rank: > 0 }) manual_seed(seed);   // dropout: each process draws its own masks
        using var generator = new Generator((ulong)seed);   // masking draws; dropout uses the global generator seeded by the caller
        var objective = TrainingObjective.For(spec, s.MaskingProbability, generator);
        var batch = new LabelledBatch(train.Binding, s.BatchSize);
        int bufferRows = s.ShuffleBufferSize > 0 ? s.ShuffleBufferSize : train.Count;
        var identity = s.CheckpointInterval > 0 || s.Resume ? TrainingCheckpoint.IdentityOf(spec, s, train, validation) : null;
        var state = new TrainingState();
        var checkpointPath = reducer is { Rank: > 0 } && s.CheckpointPath is not null
            ? string.Create(CultureInfo.InvariantCulture, $"{s.CheckpointPath}.rank{reducer.Rank}") : s.CheckpointPath;
        ShuffledRows? epochRows = null;
        var watch = Stopwatch.StartNew();
        try
        {
            if (s.Resume && AllOrNone(File.Exists(checkpointPath), reducer, checkpointPath))
            {
                var stored = TrainingCheckpoint.Resume(checkpointPath!, identity!, network, optimizer, generator);
                state.Dispose();
                state = stored;
                log?.Invoke($"Linformer training resumed from checkpoint '{checkpointPath}' at step {state.Step} (epoch {state.Epoch}).");
            }
            bucket?.BroadcastParametersFromRankZero();

            for (; state.Epoch <= s.Epochs; state.Epoch++, state.NextStart = -1)
            {
                network.train();
                if (state.NextStart < 0)
                {
                    state.NextStart = 0;
                    state.LossSum = 0;
                    state.LossCount = 0;
                }
                // The epoch's order follows from the seed and the epoch; a resumed epoch skips the rows it trained on.
                epochRows = new ShuffledRows(train, bufferRows, seed, state.Epoch);
                epochRows.Skip(state.NextStart);
                while (state.Step < state.Epoch * stepsPerEpoch)
                {
                    s.CheckAlive?.Invoke();
                    int stepEnd = Math.Min(train.Count, state.NextStart + rowsPerStep);
                    int rows = stepEnd - state.NextStart;
                    optimizer.ParamGroups.First().LearningRate = LearningRateAt(state.Step, totalSteps, warmup, s);
                    double lossSum = 0;
                    using (var scope = NewDisposeScope())
                    {
                        optimizer.zero_grad();
                        for (int start = state.NextStart; start < stepEnd; start += s.BatchSize)
                        {
                            int count = Math.Min(s.BatchSize, stepEnd - start);
                            epochRows.Fill(batch, count);
                            using var batchScope = NewDisposeScope();   // frees each batch's activations before the next
                            var lossTensor = objective.Loss(network, batch, device, out _);
                            double loss = lossTensor.item<float>();
                            if (!double.IsFinite(loss))
                                throw new InvalidOperationException(
                                    $"Training stopped at step {state.Step + 1} (epoch {state.Epoch}): the loss became {loss.ToString(CultureInfo.InvariantCulture)}. Lower LearningRate, raise GradientClipNorm protection (smaller value), or check the input scale.");
                            // The step's gradient is the mean over its rows: each batch's mean loss weighs count / rows.
                            if (count == rows) lossTensor.backward();
                            else
                            {
                                using var weight = ((float)((double)count / rows)).ToScalar();
                                lossTensor.mul(weight).backward();
                            }
                            lossSum += loss * count;
                        }
                        if (bucket is not null) (rows, lossSum) = bucket.Average(rows, lossSum);
                        if (s.GradientClipNorm > 0) nn.utils.clip_grad_norm_(parameters, s.GradientClipNorm);
                        optimizer.step();
                    }
                    state.Step++;
                    state.NextStart = stepEnd;
                    state.RowsSeen += rows;
                    state.LossSum += lossSum;
                    state.LossCount += rows;
                    if (s.CheckpointInterval > 0 && state.Step % s.CheckpointInterval == 0)
                        TrainingCheckpoint.Save(checkpointPath!, identity!, state, network, optimizer, generator);
                    if (progressSink is not null)
                    {
                        double stepRate = state.RowsSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds);
                        progressSink.Report(new LinformerTrainingProgress(state.Epoch, s.Epochs, state.Step, totalSteps, state.LossSum / state.LossCount,
                            null, null, stepRate, RemainingAt(state.Step, totalSteps, GlobalRowsPerStep(rowsPerStep, reducer), stepRate), IsEpochEnd: false));
                    }
                }

                epochRows.CheckEnd();
                epochRows.Dispose();
                epochRows = null;

                double? valLoss = null, valMetric = null;
                if (validation is { Count: > 0 } || (reducer is not null && validation is not null))
                {
                    (valLoss, valMetric) = Evaluate(network, device, validation, s, objective, reducer);
                    if (valLoss < state.BestLoss - 1e-12)
                    {
                        state.BestLoss = valLoss.Value;
                        state.EpochsWithoutImprovement = 0;
                        state.SetBest(Snapshot(network));
                    }
                    else state.EpochsWithoutImprovement++;
                }
                double rate = state.RowsSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds);
                var progress = new LinformerTrainingProgress(state.Epoch, s.Epochs, state.Step, totalSteps, state.LossSum / Math.Max(1, state.LossCount),
                    valLoss, valMetric, rate, RemainingAt(state.Step, totalSteps, GlobalRowsPerStep(rowsPerStep, reducer), rate), IsEpochEnd: true);
                progressSink?.Report(progress);
                log?.Invoke(Describe(progress, objective));
                if (s.EarlyStoppingPatience > 0 && state.EpochsWithoutImprovement >= s.EarlyStoppingPatience)
                {
                    log?.Invoke(FormattableString.Invariant($"Early stopping after epoch {state.Epoch}: validation loss did not improve for {s.EarlyStoppingPatience} epoch(s); keeping the best (loss {state.BestLoss:G5})."));
                    break;
                }
            }
            if (state.Best is not null) Restore(network, state.Best);
        }
        catch (Exception ex) when (AllocationFailure.Is(ex))
        {
            throw AllocationFailure.Wrap(ex, $"Training step {state.Step + 1} (epoch {state.Epoch}) on batches of up to {s.BatchSize} sequence(s)",
                train.Binding.SequenceLength, s.BatchSize, device.ToString());
        }
        finally
        {
            epochRows?.Dispose();
            state.Dispose();
            network.eval();
        }
    }

    /// <summary>Optimizer steps per epoch: the same in every process of a data-parallel run (the most any needs).</summary>
    private static long StepsPerEpoch(int rows, int rowsPerStep, IGradientReducer? reducer)
    {
        long local = (rows + (long)rowsPerStep - 1) / rowsPerStep;
        if (reducer is null) return local;
        var counts = new float[reducer.ProcessCount];
        counts[reducer.Rank] = rows;   // exact in a float up to 2^24 rows per process
        reducer.AllReduceSum(counts);
        return counts.Max(c => ((long)c + rowsPerStep - 1) / rowsPerStep);
    }

    private static int GlobalRowsPerStep(int rowsPerStep, IGradientReducer? reducer) => rowsPerStep * (reducer?.ProcessCount ?? 1);

    /// <summary>
    /// The seed of this process's shuffling, masking and dropout: the run's seed in process 0 (and outside a
    /// data-parallel run), a different one in every other process, so that processes do not draw the same masks.
    /// </summary>
    internal static int RankSeed(int seed, IGradientReducer? reducer) =>
        reducer is null || reducer.Rank == 0 ? seed : unchecked(seed + (int)(0x9E3779B9u * (uint)reducer.Rank));

    /// <summary>Whether every process has its checkpoint (true), none has (false); a mix is an error.</summary>
    private static bool AllOrNone(bool exists, IGradientReducer? reducer, string? path)
    {
        if (reducer is null) return exists;
        var flags = new float[] { exists ? 1 : 0 };
        reducer.AllReduceSum(flags);
        if (flags[0] == 0) return false;
        if (flags[0] == reducer.ProcessCount) return true;
        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
            $"Only {flags[0]} of the {reducer.ProcessCount} processes have their checkpoint (this process, rank {reducer.Rank}: '{path}' {(exists ? "exists" : "is missing")}); every process resumes from its own checkpoint, so all of them must be there, or none."));
    }

    private static TimeSpan RemainingAt(long step, long totalSteps, int batchSize, double rowsPerSecond) =>
        TimeSpan.FromSeconds((totalSteps - step) * (double)batchSize / Math.Max(rowsPerSecond, 1e-9));

    internal static double LearningRateAt(long step, long total, long warmup, TrainerSettings s)
    {
        if (warmup > 0 && step < warmup) return s.LearningRate * (step + 1) / warmup;
        double progress = total <= warmup ? 1 : (double)(step - warmup) / (total - warmup);
        return s.LearningRateDecay switch
        {
            LearningRateDecay.Linear => s.LearningRate * Math.Max(0.0, 1 - progress),
            LearningRateDecay.Cosine => s.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress))),
            _ => s.LearningRate,
        };
    }

    private static string Describe(LinformerTrainingProgress p, TrainingObjective objective)
    {
        string validation = p.ValidationLoss is null ? "" : FormattableString.Invariant($", validation loss {p.ValidationLoss:G5}, validation {objective.MetricName} {p.ValidationMetric:G5}");
        return FormattableString.Invariant($"Linformer epoch {p.Epoch}/{p.Epochs}: training loss {p.TrainingLoss:G5}{validation}, {p.RowsPerSecond:F1} rows/s, ETA {p.Remaining:hh\\:mm\\:ss}");
    }

    /// <summary>Loss and metric over the validation rows, read in one pass, batch by batch, in their stored order (in a data-parallel run: over every process's rows).</summary>
    private static (double loss, double metric) Evaluate(LinformerNetwork network, Device device, TrainingRows data, TrainerSettings s, TrainingObjective objective, IGradientReducer? reducer)
    {
        network.eval();
        var batch = new LabelledBatch(data.Binding, s.BatchSize);
        double lossSum = 0, metricSum = 0;
        int rows = 0;
        using var noGrad = no_grad();
        using (var pass = data.Open())
            while (true)
            {
                int count = 0;
                while (count < s.BatchSize && pass.ReadNext(batch, count)) count++;
                if (count == 0) break;
                batch.Rows.Count = count;
                using var scope = NewDisposeScope();
                var loss = objective.Loss(network, batch, device, out double metric);
                lossSum += loss.item<float>() * count;
                metricSum += metric * count;
                rows += count;
            }
        if (rows != data.Count) throw data.ChangedBetweenPasses("in the validation pass", rows);
        network.train();
        double total = rows;
        if (reducer is not null)
        {
            // A data-parallel run decides early stopping on the loss over every process's validation rows.
            var sums = new[] { (float)lossSum, (float)metricSum, rows };
            reducer.AllReduceSum(sums);
            (lossSum, metricSum, total) = (sums[0], sums[1], sums[2]);
        }
        return (lossSum / total, metricSum / total);
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module module)
    {
        using var scope = NewDisposeScope();   // frees the detach() views; the clones leave the scope
        return module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    private static void Restore(nn.Module module, Dictionary<string, Tensor> state)
    {
        using var noGrad = no_grad();
        foreach (var (key, value) in module.state_dict()) value.copy_(state[key]);
    }
}
