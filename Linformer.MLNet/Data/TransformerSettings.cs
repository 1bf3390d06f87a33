namespace Linformer.MLNet.Data;

/// <summary>How a fitted transformer reads and writes columns.</summary>
internal sealed record TransformerSettings(InputBinding Binding, string OutputColumn, string? ScoreColumn, LinformerOutputKind OutputKind,
    int Vocabulary, int? PaddingTokenId, int BatchSize);
