using Linformer.MLNet.Model;

namespace Linformer.MLNet.Data;

/// <summary>
/// How a fitted transformer reads and writes columns. <paramref name="Head"/>: the head's columns (format 1.3);
/// <paramref name="ScoreColumn"/>: the one score column of models saved before 1.3 (class probabilities or the
/// regression value), kept so those models load and give what they gave.
/// </summary>
internal sealed record TransformerSettings(InputBinding Binding, string OutputColumn, string? ScoreColumn, LinformerOutputKind OutputKind,
    int Vocabulary, int? PaddingTokenId, int BatchSize, HeadColumns? Head = null)
{
    /// <summary>What the encoder computes from the head for these columns.</summary>
    public HeadOutput HeadOutput(HeadKind head) => Head?.Label switch
    {
        LabelKind.Boolean => Data.HeadOutput.LogOddsAndProbability,
        LabelKind.Key => Data.HeadOutput.Probabilities,
        LabelKind.Single => Data.HeadOutput.Value,
        _ when ScoreColumn is null || head == HeadKind.None => Data.HeadOutput.None,
        _ => head == HeadKind.Classification ? Data.HeadOutput.Probabilities : Data.HeadOutput.Value,
    };
}
