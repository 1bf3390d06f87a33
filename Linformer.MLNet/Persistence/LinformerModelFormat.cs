using System.Text.Json;
using System.Text.Json.Serialization;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;

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
        // ArgumentException: a damaged string that is not valid UTF-16 (System.Text.Json cannot transcode it).
        catch (Exception ex) when (ex is JsonException or ArgumentException) { throw new InvalidDataException($"The Linformer model's settings are corrupt: {ex.Message}", ex); }
        if (d?.Network?.Encoder is null || d.Input is null || string.IsNullOrEmpty(d.OutputColumn))
            throw new InvalidDataException("The Linformer model's settings are incomplete.");
        try { d.Network.Encoder.Validate(); }
        catch (ArgumentException ex) { throw new InvalidDataException($"The Linformer model's stored settings are invalid: {ex.Message}", ex); }
        if (d.Network.Encoder.SequenceLength != d.Input.SequenceLength)
            throw new InvalidDataException($"The Linformer model's stored settings disagree: the encoder's sequence length is {d.Network.Encoder.SequenceLength}, the input column's {d.Input.SequenceLength}.");
        CheckColumnsAndHeads(d);
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

    /// <summary>The settings beyond the encoder's own (<see cref="LinformerEncoderOptions.Validate"/>): columns, heads, batch size.</summary>
    private static void CheckColumnsAndHeads(Document d)
    {
        var (network, input, encoder) = (d.Network, d.Input, d.Network.Encoder);
        static void Require(bool valid, string what)
        {
            if (!valid) throw new InvalidDataException($"The Linformer model's stored settings are invalid: {what}.");
        }
        Require(!string.IsNullOrEmpty(input.Column), "the input column has no name");
        Require(input.MaskColumn is null || input.MaskColumn.Length > 0, "the mask column has an empty name");
        Require(d.ScoreColumn is null || d.ScoreColumn.Length > 0, "the score column has an empty name");
        Require(Enum.IsDefined(input.Kind), $"the input column's item kind ({input.Kind}) is unknown");
        Require(Enum.IsDefined(network.Head), $"the head ({network.Head}) is unknown");
        Require(Enum.IsDefined(d.OutputKind), $"OutputKind ({d.OutputKind}) is unknown");
        Require(d.BatchSize > 0, $"BatchSize ({d.BatchSize}) must be positive");
        Require(input.IsTokens == encoder.UsesTokens,
            $"the input column holds {(input.IsTokens ? "token ids" : "floats")}, the encoder reads {(encoder.UsesTokens ? "token ids" : "floats")}");
        Require(Enum.IsDefined(input.Truncation), $"the truncation rule ({input.Truncation}) is unknown");
        Require(input.IsTokens || !network.SpecialTokens, "special tokens apply to token input only");
        Require(input.VariableLength || input.Truncation == LinformerTruncation.KeepStart, "a truncation rule applies to variable-length input only");
        // Format 1.5: a Text column, read as variable-length ids of the tokenizer in the model's own entry.
        Require(input.Kind != SequenceItemKind.Text || (input.VariableLength && input.MaskColumn is null && input.KeyCount is null),
            "a Text input column is read as variable-length tokens without a mask column or key count");
        // Format 1.5: long inputs as windows.
        Require(Enum.IsDefined(input.LongInputs), $"LongInputs ({input.LongInputs}) is unknown");
        Require(input.VariableLength || input.LongInputs == LinformerLongInputs.Truncate, "LongInputs applies to variable-length input only");
        Require(input.LongInputs != LinformerLongInputs.Windows || d.OutputKind != LinformerOutputKind.Sequence, "LongInputs = Windows needs a pooled output, not Sequence");
        if (input.IsTokens)
        {
            Require(network.InputChannels == 0 && input.Channels == 0, $"token input has no channels (stored: {network.InputChannels}, {input.Channels})");
            Require(!network.SpecialTokens || d.Vocabulary > TokenLayout.ReservedCount,
                $"a vocabulary of {d.Vocabulary} leaves no ids beside the {TokenLayout.ReservedCount} reserved special tokens");
            Require(d.Vocabulary == encoder.VocabularySize, $"the vocabulary ({d.Vocabulary}) differs from the encoder's ({encoder.VocabularySize})");
            Require(input.KeyCount is null or > 0, $"the key count ({input.KeyCount}) must be positive");
            Require(d.PaddingTokenId is null || (d.PaddingTokenId >= 0 && d.PaddingTokenId < d.Vocabulary),
                $"PaddingTokenId ({d.PaddingTokenId}) must be a token id below the vocabulary size ({d.Vocabulary})");
        }
        else
        {
            Require(network.InputChannels > 0 && input.Channels == network.InputChannels,
                $"the input channels disagree (network {network.InputChannels}, input column {input.Channels})");
            Require(d.PaddingTokenId is null, "PaddingTokenId applies to token input only");
        }
        Require((long)input.SequenceLength * Math.Max(1, Math.Max(input.Channels, encoder.ModelWidth)) <= int.MaxValue,
            $"a row of {input.SequenceLength} positions does not fit one ML.NET vector");
        Require(network.Head != HeadKind.Classification || network.Classes > 0, $"the classification head needs classes (stored: {network.Classes})");
        Require(network.Classes >= 0, $"Classes ({network.Classes}) must not be negative");
        Require(d.ScoreColumn is null || network.Head != HeadKind.None, $"the score column '{d.ScoreColumn}' needs a supervised head");
    }

    /// <summary>
    /// A lower bound on the number of values the network of <paramref name="spec"/> stores (query, key and value maps,
    /// feed-forward blocks, token embedding, one sequence projection, input map, heads), so that settings which do not
    /// fit the stored weights are refused before a network of that size is allocated.
    /// </summary>
    public static double MinimumValues(NetworkSpec spec)
    {
        var e = spec.Encoder;
        double width = spec.Width, layers = e.Depth;
        double values = layers * 3 * e.ModelWidth * ((double)e.Heads * e.EffectiveHeadWidth);
        if (e.IncludeFeedForward) values += layers * 2 * (double)e.ModelWidth * e.FeedForwardSize;
        if (e.UsesTokens) values += (double)e.VocabularySize!.Value * e.EffectiveEmbeddingSize;
        if (!e.FullAttention && e.ProjectionMethod != ProjectionMethod.Convolution) values += e.SequenceLength;
        if (!e.UsesTokens && spec.InputChannels != e.ModelWidth) values += (double)spec.InputChannels * e.ModelWidth;
        if (spec.Head == HeadKind.Classification) values += width * spec.Classes;
        if (spec.PretrainingHead) values += width * (e.UsesTokens ? e.VocabularySize!.Value : spec.InputChannels);
        return values;
    }

    /// <summary>
    /// Compares the tensor names and shapes in a TorchSharp state dict (as <c>Module.save</c> writes it: LEB128 count,
    /// then per tensor a name, LEB128 dtype, rank and dimensions, and the raw data) with what
    /// <paramref name="expected"/> holds, and says what differs; null when nothing differs. A listing that cannot be
    /// read (a count, rank or dimension that does not fit the bytes) is a difference too: TorchSharp's own reader would
    /// allocate whatever a damaged field asks for.
    /// </summary>
    public static string? DescribeStateDictMismatch(byte[] weights, IReadOnlyDictionary<string, long[]> expected)
    {
        Dictionary<string, long[]> stored;
        try { stored = ReadListing(weights); }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or IOException or FormatException)
        {
            return $"the state dict cannot be read: {ex.Message}";
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

    /// <summary>The tensor names and shapes of a state dict, every field checked against the bytes that remain.</summary>
    private static Dictionary<string, long[]> ReadListing(byte[] weights)
    {
        using var reader = new BinaryReader(new MemoryStream(weights));
        long Remaining() => weights.Length - reader.BaseStream.Position;
        long count = Leb128(reader);
        if (count < 0 || count > Remaining()) throw new InvalidDataException($"it declares {count} tensors in {weights.Length} bytes");
        var stored = new Dictionary<string, long[]>(StringComparer.Ordinal);
        for (long i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var dtype = (TorchSharp.torch.ScalarType)Leb128(reader);
            long rank = Leb128(reader);
            if (rank < 0 || rank > MaxRank) throw new InvalidDataException($"tensor '{name}' has rank {rank}");
            var shape = new long[rank];
            long values = 1;
            for (int d = 0; d < shape.Length; d++)
            {
                shape[d] = Leb128(reader);
                if (shape[d] < 0 || (shape[d] > 0 && values > Remaining() / shape[d]))
                    throw new InvalidDataException($"tensor '{name}' has dimension {d} of {shape[d]}, more than the {Remaining()} bytes that remain");
                values *= shape[d];
            }
            long bytes = values * ElementSize(dtype);
            if (bytes > Remaining()) throw new InvalidDataException($"tensor '{name}' needs {bytes} bytes, {Remaining()} remain");
            if (!stored.TryAdd(name, shape)) throw new InvalidDataException($"tensor '{name}' appears twice");
            reader.BaseStream.Seek(bytes, SeekOrigin.Current);
        }
        if (Remaining() != 0) throw new InvalidDataException($"{Remaining()} bytes follow the last tensor");
        return stored;
    }

    /// <summary>libtorch's limit on tensor dimensions.</summary>
    private const int MaxRank = 64;

    private static long Leb128(BinaryReader reader)
    {
        long result = 0;
        for (int shift = 0; shift < 63; shift += 7)
        {
            byte b = reader.ReadByte();
            result |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("a LEB128 number is longer than 9 bytes");
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
