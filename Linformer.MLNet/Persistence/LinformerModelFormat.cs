using System.Text.Json;
using System.Text.Json.Serialization;
using Linformer.MLNet.Data;
using Linformer.MLNet.Training;

namespace Linformer.MLNet.Persistence;

/// <summary>
/// The settings part of a saved Linformer model: one JSON document with the network's hyper-parameters and the
/// column bindings. The weights follow in their own zip entry (TorchSharp's state-dict format).
/// </summary>
internal static class LinformerModelFormat
{
    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        WriteIndented = false,
    };

    private sealed record Document(NetworkSpec Network, InputBinding Input, string OutputColumn, string? ScoreColumn,
        LinformerOutputKind OutputKind, int Vocabulary, int? PaddingTokenId, int BatchSize);

    public static string Serialize(NetworkSpec spec, TransformerSettings s)
        => JsonSerializer.Serialize(new Document(spec, s.Binding, s.OutputColumn, s.ScoreColumn, s.OutputKind, s.Vocabulary, s.PaddingTokenId, s.BatchSize), Json);

    /// <summary>The network's settings alone, as JSON (checkpoints compare it).</summary>
    public static string SerializeSpec(NetworkSpec spec) => JsonSerializer.Serialize(spec, Json);

    public static (NetworkSpec spec, TransformerSettings settings) Deserialize(string json)
    {
        Document? d;
        try { d = JsonSerializer.Deserialize<Document>(json, Json); }
        catch (JsonException ex) { throw new InvalidDataException($"The Linformer model's settings are corrupt: {ex.Message}", ex); }
        if (d?.Network?.Encoder is null || d.Input is null || string.IsNullOrEmpty(d.OutputColumn))
            throw new InvalidDataException("The Linformer model's settings are incomplete.");
        try { d.Network.Encoder.Validate(); }
        catch (ArgumentException ex) { throw new InvalidDataException($"The Linformer model's stored settings are invalid: {ex.Message}", ex); }
        if (d.Network.Encoder.SequenceLength != d.Input.SequenceLength)
            throw new InvalidDataException($"The Linformer model's stored settings disagree: the encoder's sequence length is {d.Network.Encoder.SequenceLength}, the input column's {d.Input.SequenceLength}.");
        return (d.Network, new TransformerSettings(d.Input, d.OutputColumn, d.ScoreColumn, d.OutputKind, d.Vocabulary, d.PaddingTokenId, d.BatchSize));
    }
}
