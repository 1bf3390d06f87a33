using System.Diagnostics;
using Linformer.MLNet.Data;
using Linformer.MLNet.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>The learning-rate schedule after warm-up.</summary>
public enum LearningRateDecay
{
    /// <summary>Constant learning rate after warm-up.</summary>
    None,
    /// <summary>Linear decay to zero at the last step.</summary>
    Linear,
    /// <summary>Cosine decay to zero at the last step.</summary>
    Cosine,
}

/// <summary>Training data held in memory: sequences, masks and labels.</summary>
internal sealed class TrainingSet(SequenceBatch rows, long[]? classLabels, float[]? regressionLabels)
{
    public SequenceBatch Rows { get; } = rows;
    public long[]? ClassLabels { get; } = classLabels;
    public float[]? RegressionLabels { get; } = regressionLabels;
    public int Count => Rows.Count;
}

/// <summary>Settings of one training run (validated by the estimator's options).</summary>
internal sealed record TrainerSettings
{
    public int Epochs { get; init; }
    public int BatchSize { get; init; }
    public double LearningRate { get; init; }
    public double WarmupFraction { get; init; }
    public LearningRateDecay Decay { get; init; }
    public double WeightDecay { get; init; }
    public double GradientClipNorm { get; init; }
    public int Seed { get; init; }
    public int EarlyStoppingPatience { get; init; }
    public double MaskingProbability { get; init; }
    public IProgress<LinformerTrainingProgress>? Progress { get; init; }
    public Action<string>? Log { get; init; }
    /// <summary>Throws to cancel (ML.NET's host check, the options' cancellation token); called between batches.</summary>
    public Action? CheckAlive { get; init; }
    /// <summary>Checkpoint file, or null.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Steps between checkpoints; 0 = none.</summary>
    public int CheckpointInterval { get; init; }
    /// <summary>Continue from <see cref="CheckpointPath"/> when it exists.</summary>
    public bool Resume { get; init; }
}

/// <summary>
/// The training loop: AdamW, linear warm-up then decay, gradient clipping, supervised (cross-entropy / MSE) or
/// self-supervised objectives (masked-token prediction, masked-position reconstruction), optional validation with
/// early stopping (the best epoch's weights are kept). Stops with a clear error when the loss stops being finite.
/// </summary>
internal static class LinformerTrainer
{
    public static void Train(LinformerNetwork network, Device device, TrainingSet train, TrainingSet? validation, TrainerSettings s)
    {
        var spec = network.Spec;
        if (train.Count == 0) throw new InvalidOperationException("The training data has no rows.");
        var parameters = network.DistinctParameters().ToList();
        using var optimizer = optim.AdamW(parameters, lr: s.LearningRate, weight_decay: s.WeightDecay);
        int batchesPerEpoch = (train.Count + s.BatchSize - 1) / s.BatchSize;
        long totalSteps = (long)batchesPerEpoch * s.Epochs;
        long warmup = (long)Math.Round(totalSteps * s.WarmupFraction);
        var order = Enumerable.Range(0, train.Count).ToArray();
        var shuffler = new Random(s.Seed);
        using var generator = new Generator((ulong)s.Seed);   // masking draws; dropout uses the global generator seeded by the caller
        var batch = new SequenceBatch(train.Rows.Binding, s.BatchSize);
        var labels = new long[s.BatchSize];
        var targets = new float[s.BatchSize];

        double bestLoss = double.PositiveInfinity;
        int epochsWithoutImprovement = 0;
        Dictionary<string, Tensor>? best = null;
        long step = 0, rowsSeen = 0;
        double lossSum = 0;
        int lossCount = 0;
        int firstEpoch = 1, resumeStart = -1;
        bool checkpoints = s.CheckpointInterval > 0 || s.Resume;
        var identity = checkpoints ? TrainingCheckpoint.IdentityOf(spec, s, train, validation) : null;
        int epoch = 1;
        var watch = Stopwatch.StartNew();
        try
        {
            if (s.Resume && File.Exists(s.CheckpointPath))
            {
                var checkpoint = TrainingCheckpoint.Read(s.CheckpointPath!);
                checkpoint.CheckIdentity(s.CheckpointPath!, identity!);
                // The shuffle order of epoch e is the generator's e-th shuffle of the previous order: replay them.
                for (int e = 1; e <= checkpoint.Epoch; e++) shuffler.Shuffle(order);
                if (!order.AsSpan().SequenceEqual(checkpoint.Order))
                    throw new InvalidOperationException($"The checkpoint '{s.CheckpointPath}' holds another shuffle order for epoch {checkpoint.Epoch} than this run produces; it cannot be resumed.");
                using (var stream = new MemoryStream(checkpoint.Network)) network.load(new BinaryReader(stream), strict: true);
                using (var stream = new MemoryStream(checkpoint.Optimizer)) optimizer.load_state_dict(new BinaryReader(stream));
                TrainingCheckpoint.Restore(generator, checkpoint.MaskingGenerator);
                TrainingCheckpoint.RestoreGlobal(checkpoint.GlobalGenerator);
                if (checkpoint.Best is not null) best = TrainingCheckpoint.Deserialize(checkpoint.Best);
                bestLoss = checkpoint.BestLoss;
                epochsWithoutImprovement = checkpoint.EpochsWithoutImprovement;
                step = checkpoint.Step;
                rowsSeen = checkpoint.RowsSeen;
                lossSum = checkpoint.LossSum;
                lossCount = checkpoint.LossCount;
                firstEpoch = checkpoint.Epoch;
                resumeStart = checkpoint.NextStart;
                s.Log?.Invoke($"Linformer training resumed from checkpoint '{s.CheckpointPath}' at step {step} (epoch {checkpoint.Epoch}).");
            }

            for (epoch = firstEpoch; epoch <= s.Epochs; epoch++)
            {
                network.train();
                int first = 0;
                if (epoch == firstEpoch && resumeStart >= 0) first = resumeStart;
                else
                {
                    shuffler.Shuffle(order);
                    lossSum = 0;
                    lossCount = 0;
                }
                for (int start = first; start < train.Count; start += s.BatchSize)
                {
                    s.CheckAlive?.Invoke();
                    int count = Math.Min(s.BatchSize, train.Count - start);
                    Gather(train, order.AsSpan(start, count), batch, labels, targets);
                    optimizer.ParamGroups.First().LearningRate = LearningRateAt(step, totalSteps, warmup, s);
                    double loss;
                    using (var scope = NewDisposeScope())
                    {
                        optimizer.zero_grad();
                        var lossTensor = Loss(network, batch, labels, targets, device, s.MaskingProbability, generator, out _);
                        loss = lossTensor.item<float>();
                        if (!double.IsFinite(loss))
                            throw new InvalidOperationException(
                                $"Training stopped at step {step + 1} (epoch {epoch}): the loss became {loss}. Lower LearningRate, raise GradientClipNorm protection (smaller value), or check the input scale.");
                        lossTensor.backward();
                        if (s.GradientClipNorm > 0) nn.utils.clip_grad_norm_(parameters, s.GradientClipNorm);
                        optimizer.step();
                    }
                    step++;
                    rowsSeen += count;
                    lossSum += loss * count;
                    lossCount += count;
                    if (s.CheckpointInterval > 0 && step % s.CheckpointInterval == 0)
                        WriteCheckpoint(s.CheckpointPath!, identity!, network, optimizer, generator, order, best, bestLoss, epochsWithoutImprovement,
                            step, epoch, start + count, rowsSeen, lossSum, lossCount);
                    if (s.Progress is not null)
                    {
                        double stepRate = rowsSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds);
                        s.Progress.Report(new LinformerTrainingProgress(epoch, s.Epochs, step, totalSteps, lossSum / lossCount,
                            null, null, stepRate, RemainingAt(step, totalSteps, s.BatchSize, stepRate), IsEpochEnd: false));
                    }
                }

                double? valLoss = null, valMetric = null;
                if (validation is { Count: > 0 })
                {
                    (valLoss, valMetric) = Evaluate(network, device, validation, s, generator);
                    if (valLoss < bestLoss - 1e-12)
                    {
                        bestLoss = valLoss.Value;
                        epochsWithoutImprovement = 0;
                        DisposeAll(best);
                        best = Snapshot(network);
                    }
                    else epochsWithoutImprovement++;
                }
                double rate = rowsSeen / Math.Max(1e-9, watch.Elapsed.TotalSeconds);
                var remaining = RemainingAt(step, totalSteps, s.BatchSize, rate);
                var progress = new LinformerTrainingProgress(epoch, s.Epochs, step, totalSteps, lossSum / Math.Max(1, lossCount),
                    valLoss, valMetric, rate, remaining, IsEpochEnd: true);
                s.Progress?.Report(progress);
                s.Log?.Invoke(Describe(progress, spec));
                if (s.EarlyStoppingPatience > 0 && epochsWithoutImprovement >= s.EarlyStoppingPatience)
                {
                    s.Log?.Invoke($"Early stopping after epoch {epoch}: validation loss did not improve for {s.EarlyStoppingPatience} epoch(s); keeping the best (loss {bestLoss:G5}).");
                    break;
                }
            }
            if (best is not null) Restore(network, best);
        }
        catch (Exception ex) when (AllocationFailure.Is(ex))
        {
            throw AllocationFailure.Wrap(ex, $"Training step {step + 1} (epoch {epoch}) on batches of up to {s.BatchSize} sequence(s)",
                train.Rows.Binding.SequenceLength, s.BatchSize, device.ToString());
        }
        finally
        {
            DisposeAll(best);
            network.eval();
        }
    }

    private static void WriteCheckpoint(string path, List<KeyValuePair<string, string>> identity, LinformerNetwork network, OptimizerHelper optimizer,
        Generator generator, int[] order, Dictionary<string, Tensor>? best, double bestLoss, int epochsWithoutImprovement,
        long step, int epoch, int nextStart, long rowsSeen, double lossSum, int lossCount)
    {
        byte[] networkBytes, optimizerBytes;
        using (var buffer = new MemoryStream())
        {
            network.save(new BinaryWriter(buffer));   // closes the writer; ToArray still works
            networkBytes = buffer.ToArray();
        }
        using (var buffer = new MemoryStream())
        {
            optimizer.save_state_dict(new BinaryWriter(buffer));
            optimizerBytes = buffer.ToArray();
        }
        new TrainingCheckpoint
        {
            Identity = identity, Step = step, Epoch = epoch, NextStart = nextStart, RowsSeen = rowsSeen, LossSum = lossSum,
            LossCount = lossCount, Order = (int[])order.Clone(), BestLoss = bestLoss, EpochsWithoutImprovement = epochsWithoutImprovement,
            Network = networkBytes, Optimizer = optimizerBytes, MaskingGenerator = TrainingCheckpoint.StateOf(generator),
            GlobalGenerator = TrainingCheckpoint.GlobalState(), Best = best is null ? null : TrainingCheckpoint.Serialize(best),
        }.Write(path);
    }

    private static TimeSpan RemainingAt(long step, long totalSteps, int batchSize, double rowsPerSecond) =>
        TimeSpan.FromSeconds((totalSteps - step) * (double)batchSize / Math.Max(rowsPerSecond, 1e-9));

    internal static double LearningRateAt(long step, long total, long warmup, TrainerSettings s)
    {
        if (warmup > 0 && step < warmup) return s.LearningRate * (step + 1) / warmup;
        double progress = total <= warmup ? 1 : (double)(step - warmup) / (total - warmup);
        return s.Decay switch
        {
            LearningRateDecay.Linear => s.LearningRate * Math.Max(0.0, 1 - progress),
            LearningRateDecay.Cosine => s.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress))),
            _ => s.LearningRate,
        };
    }

    private static string Describe(LinformerTrainingProgress p, NetworkSpec spec)
    {
        string metricName = spec.Head switch
        {
            HeadKind.Classification => "accuracy",
            HeadKind.Regression => "MSE",
            _ => spec.UsesTokens ? "masked-token accuracy" : "masked-position MSE",
        };
        string validation = p.ValidationLoss is null ? "" : $", validation loss {p.ValidationLoss:G5}, validation {metricName} {p.ValidationMetric:G5}";
        return $"Linformer epoch {p.Epoch}/{p.Epochs}: training loss {p.TrainingLoss:G5}{validation}, {p.RowsPerSecond:F1} rows/s, ETA {p.Remaining:hh\\:mm\\:ss}";
    }

    private static (double loss, double metric) Evaluate(LinformerNetwork network, Device device, TrainingSet data, TrainerSettings s, Generator generator)
    {
        network.eval();
        var batch = new SequenceBatch(data.Rows.Binding, s.BatchSize);
        var labels = new long[s.BatchSize];
        var targets = new float[s.BatchSize];
        var index = Enumerable.Range(0, data.Count).ToArray();
        double lossSum = 0, metricSum = 0;
        using var noGrad = no_grad();
        for (int start = 0; start < data.Count; start += s.BatchSize)
        {
            int count = Math.Min(s.BatchSize, data.Count - start);
            Gather(data, index.AsSpan(start, count), batch, labels, targets);
            using var scope = NewDisposeScope();
            var loss = Loss(network, batch, labels, targets, device, s.MaskingProbability, generator, out double metric);
            lossSum += loss.item<float>() * count;
            metricSum += metric * count;
        }
        network.train();
        return (lossSum / data.Count, metricSum / data.Count);
    }

    /// <summary>The objective of the network's task on one batch; <paramref name="metric"/> gets accuracy or squared error.</summary>
    internal static Tensor Loss(LinformerNetwork network, SequenceBatch batch, long[] labels, float[] targets, Device device,
        double maskingProbability, Generator generator, out double metric)
    {
        var spec = network.Spec;
        var (input, mask) = batch.ToTensors(device);
        int b = batch.Count;
        switch (spec.Head)
        {
            case HeadKind.Classification:
            {
                var y = tensor(labels.AsSpan(0, b).ToArray(), new long[] { b }, int64).to(device);
                var logits = network.Head(network.forward(input, mask), mask);                 // (B, L)
                metric = logits.argmax(-1).eq(y).to_type(float32).mean().item<float>();
                return nn.functional.cross_entropy(logits, y);
            }
            case HeadKind.Regression:
            {
                var y = tensor(targets.AsSpan(0, b).ToArray(), new long[] { b }, float32).to(device);
                var prediction = network.Head(network.forward(input, mask), mask);             // (B)
                var loss = nn.functional.mse_loss(prediction, y);
                metric = loss.item<float>();
                return loss;
            }
            default:
                return SelfSupervisedLoss(network, input, mask, maskingProbability, generator, out metric);
        }
    }

    /// <summary>
    /// The paper's pre-training objective for tokens (masked-token prediction, Section 5: 15% of positions; selected
    /// tokens are replaced by a random token 80% of the time and kept otherwise, as there is no reserved mask id),
    /// and its analogue for float sequences (selected positions zeroed, then reconstructed; MSE on them).
    /// </summary>
    private static Tensor SelfSupervisedLoss(LinformerNetwork network, Tensor input, Tensor? mask, double p, Generator generator, out double metric)
    {
        var spec = network.Spec;
        long b = input.shape[0], n = input.shape[1];
        var real = mask ?? ones(b, n, dtype: @bool, device: input.device);
        var draw = rand(new long[] { b, n }, generator: generator).to(input.device);
        using var probability = p.ToScalar();                                                   // explicit Scalar, alive until the call returns (docs/hardening.md)
        var selected = draw.lt(probability).logical_and(real);                                  // (B, n)
        // Every row predicts at least one position: its first real one when the draw selected none.
        var none = selected.any(1).logical_not();                                               // (B)
        var firstReal = real.to_type(int64).argmax(1);                                          // (B)
        var fallback = nn.functional.one_hot(firstReal, n).to_type(@bool).logical_and(none.unsqueeze(-1));
        selected = selected.logical_or(fallback);
        if (spec.UsesTokens)
        {
            int vocabulary = spec.Encoder.VocabularySize!.Value;
            using var replaced = 0.8.ToScalar();   // share of selected tokens replaced by a random token
            var replace = selected.logical_and(rand(new long[] { b, n }, generator: generator).to(input.device).lt(replaced));
            var randomTokens = randint(0, vocabulary, new long[] { b, n }, generator: generator, dtype: int64).to(input.device);
            var corrupted = where(replace, randomTokens, input);
            var logits = network.PretrainingHead(network.forward(corrupted, mask));              // (B, n, V)
            var picked = logits[selected];                                                      // (S, V)
            var truth = input[selected];                                                        // (S)
            metric = picked.argmax(-1).eq(truth).to_type(float32).mean().item<float>();
            return nn.functional.cross_entropy(picked, truth);
        }
        else
        {
            var corrupted = input.masked_fill(selected.unsqueeze(-1), Scalars.Zero);
            var reconstructed = network.PretrainingHead(network.forward(corrupted, mask));       // (B, n, I)
            var loss = nn.functional.mse_loss(reconstructed[selected], input[selected]);
            metric = loss.item<float>();
            return loss;
        }
    }

    private static void Gather(TrainingSet data, ReadOnlySpan<int> rows, SequenceBatch batch, long[] labels, float[] targets)
    {
        batch.CopyRowsFrom(data.Rows, rows);
        for (int i = 0; i < rows.Length; i++)
        {
            if (data.ClassLabels is not null) labels[i] = data.ClassLabels[rows[i]];
            if (data.RegressionLabels is not null) targets[i] = data.RegressionLabels[rows[i]];
        }
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

    private static void DisposeAll(Dictionary<string, Tensor>? state)
    {
        if (state is null) return;
        foreach (var t in state.Values) t.Dispose();
        state.Clear();
    }
}
