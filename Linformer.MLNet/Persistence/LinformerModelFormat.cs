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

    // Head: the head's columns (format 1.3); absent in older models, whose head output is ScoreColumn alone.
    private sealed record Document(NetworkSpec Network, InputBinding Input, string OutputColumn, string? ScoreColumn,
        LinformerOutputKind OutputKind, int Vocabulary, int? PaddingTokenId, int BatchSize, HeadColumns? Head = null);

    public static string Serialize(NetworkSpec spec, TransformerSettings s)
        => JsonSerializer.Serialize(new Document(spec, s.Binding, s.OutputColumn, s.ScoreColumn, s.OutputKind, s.Vocabulary, s.PaddingTokenId, s.BatchSize, s.Head), Json);

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
        if (d.Head is { } head) CheckHead(head, d.Network);
        return (d.Network, new TransformerSettings(d.Input, d.OutputColumn, d.ScoreColumn, d.OutputKind, d.Vocabulary, d.PaddingTokenId, d.BatchSize, d.Head));
    }

    private static void CheckHead(HeadColumns head, NetworkSpec network)
    {
        if (string.IsNullOrEmpty(head.Score) || !Enum.IsDefined(head.Label))
            throw new InvalidDataException("The Linformer model's settings are incomplete: its head columns have no score column or label kind.");
        var expected = head.Label == LabelKind.Single ? HeadKind.Regression : HeadKind.Classification;
        if (network.Head != expected || (head.Label == LabelKind.Key && head.Classes != network.Classes) || (head.Label == LabelKind.Boolean && network.Classes != 2))
            throw new InvalidDataException($"The Linformer model's stored settings disagree: head columns for a {head.Label} label ({head.Classes} classes), a network with a {network.Head} head ({network.Classes} classes).");
        if (head.KeyValues is { } keys && (!keys.IsKnownType || keys.Values is null || keys.Values.Length != head.Classes))
            throw new InvalidDataException($"The Linformer model's stored label key values are invalid: {keys.Values?.Length ?? 0} values of type '{keys.ItemType}' for {head.Classes} classes.");
    }

    /// <summary>
    /// Compares the tensor names and shapes in a TorchSharp state dict (as <c>Module.save</c> writes it: LEB128 count,
    /// then per tensor a name, LEB128 dtype, rank and dimensions, and the raw data) with what
    /// <paramref name="expected"/> holds, and says what differs; null when the listing cannot be read or nothing differs.
    /// </summary>
    public static string? DescribeStateDictMismatch(byte[] weights, IReadOnlyDictionary<string, long[]> expected)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(weights));
            long count = Leb128(reader);
            var stored = new Dictionary<string, long[]>(StringComparer.Ordinal);
            for (long i = 0; i < count; i++)
            {
                string name = reader.ReadString();
                var dtype = (TorchSharp.torch.ScalarType)Leb128(reader);
                var shape = new long[Leb128(reader)];
                for (int d = 0; d < shape.Length; d++) shape[d] = Leb128(reader);
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
                reader.BaseStream.Seek(bytes, SeekOrigin.Current);
                stored[name] = shape;
            }
            static string Shape(long[] s) => $"[{string.Join(", ", s)}]";
            var differences = new List<string>();
            foreach (var (name, shape) in expected)
            {
                if (!stored.TryGetValue(name, out var have)) differences.Add($"'{name}' {Shape(shape)} is missing from the weights");
                else if (!have.SequenceEqual(shape)) differences.Add($"'{name}' has shape {Shape(have)} in the weights, the settings build {Shape(shape)}");
            }
            foreach (var name in stored.Keys.Where(k => !expected.ContainsKey(k)).Order(StringComparer.Ordinal))
                differences.Add($"'{name}' in the weights does not belong to the network the settings build");
            return differences.Count == 0 ? null : string.Join("; ", differences.Take(5)) + (differences.Count > 5 ? $"; and {differences.Count - 5} more" : "");
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or ArgumentException or OverflowException)
        {
            return null;
        }
    }

    private static long Leb128(BinaryReader reader)
    {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = reader.ReadByte();
            result |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new OverflowException("LEB128 value too long.");
    }

    private static long ElementSize(TorchSharp.torch.ScalarType dtype) => dtype switch
    {
        TorchSharp.torch.ScalarType.Float64 or TorchSharp.torch.ScalarType.Int64 or TorchSharp.torch.ScalarType.ComplexFloat32 => 8,
        TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.Int32 => 4,
        TorchSharp.torch.ScalarType.Float16 or TorchSharp.torch.ScalarType.BFloat16 or TorchSharp.torch.ScalarType.Int16 => 2,
        TorchSharp.torch.ScalarType.ComplexFloat64 => 16,
        _ => 1,
    };
}
