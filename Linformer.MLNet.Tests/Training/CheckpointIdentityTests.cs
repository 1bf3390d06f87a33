using System.Reflection;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Training;

namespace Linformer.MLNet.Tests.Training;

/// <summary>
/// A checkpoint may only be resumed by the run that wrote it. These tests make sure every estimator option is either
/// part of a checkpoint's identity or named here with the reason it need not be, so a new option cannot be left out
/// silently (a resume would then continue under other settings).
/// </summary>
[TestClass]
public sealed class CheckpointIdentityTests
{
    private enum Role { TrainingSetting, NetworkSetting, SelectsData, NotNeeded }

    /// <summary>Every public option of <see cref="LinformerEstimator.Options"/> and how a checkpoint covers it.</summary>
    private static readonly Dictionary<string, (Role Role, string Why)> Coverage = new()
    {
        // Training settings: properties of TrainerSettings, hence in the identity by name.
        ["Epochs"] = (Role.TrainingSetting, ""),
        ["BatchSize"] = (Role.TrainingSetting, ""),
        ["LearningRate"] = (Role.TrainingSetting, ""),
        ["WarmupFraction"] = (Role.TrainingSetting, ""),
        ["LearningRateDecay"] = (Role.TrainingSetting, ""),
        ["WeightDecay"] = (Role.TrainingSetting, ""),
        ["GradientClipNorm"] = (Role.TrainingSetting, ""),
        ["Seed"] = (Role.TrainingSetting, ""),
        ["EarlyStoppingPatience"] = (Role.TrainingSetting, ""),
        ["MaskingProbability"] = (Role.TrainingSetting, ""),
        ["Precision"] = (Role.TrainingSetting, ""),   // bf16 rounds otherwise: a resume in another precision is another run
        ["ShuffleBufferSize"] = (Role.TrainingSetting, "resolved to rows (0 = a size from the row's bytes) and stored as such"),
        ["GradientAccumulationSteps"] = (Role.TrainingSetting, ""),
        // Network settings: in the serialised NetworkSpec, the identity's "network settings" entry.
        ["SequenceLength"] = (Role.NetworkSetting, "Encoder.SequenceLength"),
        ["Channels"] = (Role.NetworkSetting, "InputChannels"),
        ["VocabularySize"] = (Role.NetworkSetting, "Encoder.VocabularySize"),
        ["ModelWidth"] = (Role.NetworkSetting, "Encoder.ModelWidth"),
        ["ProjectedLength"] = (Role.NetworkSetting, "Encoder.ProjectedLength"),
        ["Heads"] = (Role.NetworkSetting, "Encoder.Heads"),
        ["Depth"] = (Role.NetworkSetting, "Encoder.Depth"),
        ["FeedForwardSize"] = (Role.NetworkSetting, "Encoder.FeedForwardSize"),
        ["HeadWidth"] = (Role.NetworkSetting, "Encoder.HeadWidth"),
        ["Dropout"] = (Role.NetworkSetting, "Encoder.Dropout"),
        ["FeedForwardDropout"] = (Role.NetworkSetting, "Encoder.FeedForwardDropout"),
        ["Activation"] = (Role.NetworkSetting, "Encoder.Activation"),
        ["Sharing"] = (Role.NetworkSetting, "Encoder.Sharing"),
        ["ProjectionMethod"] = (Role.NetworkSetting, "Encoder.ProjectionMethod"),
        ["ProjectedLengthReductionPerLayer"] = (Role.NetworkSetting, "Encoder.ProjectedLengthReductionPerLayer"),
        ["FullAttention"] = (Role.NetworkSetting, "Encoder.FullAttention"),
        ["IncludeFeedForward"] = (Role.NetworkSetting, "Encoder.IncludeFeedForward"),
        ["NormPlacement"] = (Role.NetworkSetting, "Encoder.NormPlacement"),
        ["PositionEmbedding"] = (Role.NetworkSetting, "Encoder.PositionEmbedding"),
        ["LabelColumnName"] = (Role.NetworkSetting, "Head"),
        ["ReserveSpecialTokens"] = (Role.NetworkSetting, "SpecialTokens"),
        // Options that choose which values are read: the identity holds a SHA-256 of the values read.
        ["InputColumnName"] = (Role.SelectsData, "the training data's fingerprint covers the values read"),
        ["MaskColumnName"] = (Role.SelectsData, "the fingerprint covers the masks"),
        ["PaddingTokenId"] = (Role.SelectsData, "the fingerprint covers the masks it implies"),
        ["Truncation"] = (Role.SelectsData, "the fingerprint covers the positions each rule keeps"),
        ["Tokenizer"] = (Role.SelectsData, "the fingerprint covers the token ids it makes of each text"),
        ["ValidationSet"] = (Role.SelectsData, "the validation data's fingerprint"),
        ["ValidationFraction"] = (Role.SelectsData, "the fingerprints of both sides of the split"),
        // Options that do not change what training computes after a resume.
        ["OutputColumnName"] = (Role.NotNeeded, "names the transformer's output column only"),
        ["ScoreColumnName"] = (Role.NotNeeded, "names the transformer's output column only"),
        ["ProbabilityColumnName"] = (Role.NotNeeded, "names the transformer's output column only"),
        ["PredictedLabelColumnName"] = (Role.NotNeeded, "names the transformer's output column only"),
        ["OutputKind"] = (Role.NotNeeded, "pooling of the transformer's output; training pools by mean"),
        ["LongInputs"] = (Role.NotNeeded, "how the transformer encodes long rows; Fit trains on the rows cut by Truncation either way"),
        ["Progress"] = (Role.NotNeeded, "reporting only"),
        ["CancellationToken"] = (Role.NotNeeded, "stopping only"),
        ["CheckpointPath"] = (Role.NotNeeded, "where the checkpoint is"),
        ["CheckpointInterval"] = (Role.NotNeeded, "when checkpoints are written"),
        ["ResumeFromCheckpoint"] = (Role.NotNeeded, "whether to resume"),
        ["InitialModel"] = (Role.NotNeeded, "initial weights, replaced by the checkpoint's on resume"),
        ["PyTorchWeightsPath"] = (Role.NotNeeded, "initial weights, replaced by the checkpoint's on resume"),
        ["GradientReducer"] = (Role.SelectsData, "each process reads its share of the rows and keeps its own checkpoint, whose data fingerprint covers that share"),
    };

    [TestMethod]
    public void EveryEstimatorOptionIsInTheCheckpointIdentityOrSaysWhyNot()
    {
        var options = typeof(LinformerEstimator.Options).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite).Select(p => p.Name).ToList();
        var unclassified = options.Where(o => !Coverage.ContainsKey(o)).ToList();
        Assert.IsEmpty(unclassified,
            $"Options not covered by the checkpoint identity: {string.Join(", ", unclassified)}. A training setting belongs in " +
            "TrainerSettings (then it is part of the identity); otherwise name it in this table with the reason.");
        var stale = Coverage.Keys.Except(options).ToList();
        Assert.IsEmpty(stale, $"The table names options that no longer exist: {string.Join(", ", stale)}.");

        var identity = TrainingCheckpoint.IdentityProperties.Select(p => p.Name).ToHashSet();
        var missing = Coverage.Where(kv => kv.Value.Role == Role.TrainingSetting && !identity.Contains(kv.Key)).Select(kv => kv.Key).ToList();
        Assert.IsEmpty(missing, $"Training settings missing from the checkpoint identity: {string.Join(", ", missing)}.");

        foreach (var (option, (role, path)) in Coverage.Where(kv => kv.Value.Role == Role.NetworkSetting))
            Assert.IsNotNull(PropertyPath(typeof(NetworkSpec), path), $"Option {option} is said to be saved as NetworkSpec.{path}, which does not exist.");
    }

    [TestMethod]
    public void ChangingAnyTrainingSettingChangesTheIdentity()
    {
        var spec = new NetworkSpec { Encoder = new LinformerEncoderOptions { SequenceLength = 4, ModelWidth = 4, ProjectedLength = 2, Heads = 1 }, InputChannels = 4 };
        var rows = new SequenceBatch(new InputBinding("Values", SequenceItemKind.Single, 4, 4, null, null), 1) { Count = 1 };
        var data = new TrainingSet(rows, null, null);
        var baseline = new TrainerSettings { Epochs = 2, BatchSize = 8, LearningRate = 1e-3, WarmupFraction = 0.1, WeightDecay = 0.01, GradientClipNorm = 1, Seed = 3, MaskingProbability = 0.15 };
        var before = TrainingCheckpoint.IdentityOf(spec, baseline, data, null).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.IsGreaterThanOrEqualTo(10, TrainingCheckpoint.IdentityProperties.Count);
        foreach (var property in TrainingCheckpoint.IdentityProperties)
        {
            var changed = baseline with { };
            property.SetValue(changed, OtherValue(property.GetValue(baseline)!));
            var after = TrainingCheckpoint.IdentityOf(spec, changed, data, null).ToDictionary(kv => kv.Key, kv => kv.Value);
            Assert.AreNotEqual(before[property.Name], after[property.Name], $"Changing {property.Name} left its identity entry unchanged.");
        }
    }

    private static object OtherValue(object value) => value switch
    {
        int i => i + 1,
        double d => d + 0.5,
        bool b => !b,
        Enum e => Enum.GetValues(e.GetType()).Cast<object>().First(v => !v.Equals(e)),
        _ => throw new AssertFailedException($"No changed value for a training setting of type {value.GetType()}; add one here."),
    };

    private static PropertyInfo? PropertyPath(Type type, string path)
    {
        PropertyInfo? property = null;
        foreach (var name in path.Split('.'))
        {
            property = type.GetProperty(name);
            if (property is null) return null;
            type = property.PropertyType;
        }
        return property;
    }
}
