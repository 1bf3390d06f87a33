using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Data;

/// <summary>The item type of the sequence column; Text: a text column that <see cref="InputBinding.Tokenizer"/> turns into ids.</summary>
internal enum SequenceItemKind { Single, Int32, Int64, Key, Text }

/// <summary>
/// The checked binding of a model's input columns to a schema: the sequence column (a vector of Single, Int32, Int64
/// or Key&lt;UInt32&gt;, of known size or, with <paramref name="VariableLength"/>, of any length per row) and the
/// optional mask column (<c>Vector&lt;Boolean, N&gt;</c>, or <c>VarVector&lt;Boolean&gt;</c> beside a
/// variable-length input). Variable-length rows are padded (and masked) or cut to N by <paramref name="Truncation"/>;
/// with <paramref name="LongInputs"/> = <see cref="LinformerLongInputs.Windows"/> the transform encodes a longer row as
/// windows of N instead (training still reads the cut row).
/// A Text column is read as the variable-length ids its <see cref="Tokenizer"/> gives (format 1.5).
/// Errors use ML.NET's wording: <c>Schema mismatch for input column 'X': expected ..., got ...</c>.
/// </summary>
internal sealed record InputBinding(string Column, SequenceItemKind Kind, int SequenceLength, int Channels, int? KeyCount, string? MaskColumn,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool VariableLength = false,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] LinformerTruncation Truncation = LinformerTruncation.KeepStart,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] LinformerLongInputs LongInputs = LinformerLongInputs.Truncate)
{
    /// <summary>Number of values per row: N·I for floats, N for tokens.</summary>
    public int ValuesPerRow => Kind == SequenceItemKind.Single ? SequenceLength * Channels : SequenceLength;

    public bool IsTokens => Kind != SequenceItemKind.Single;

    /// <summary>The tokenizer of a Text column (null otherwise). Saved in its own zip entry, not in the settings JSON.</summary>
    [JsonIgnore]
    public LinformerTokenizer? Tokenizer { get; init; }

    /// <summary>
    /// Binds to a schema, inferring N and the channels from the column size where not given (0). A variable-length
    /// column needs <paramref name="sequenceLength"/>; its float rows are read as positions of
    /// <paramref name="channels"/> values (1 when 0).
    /// </summary>
    public static InputBinding Bind(DataViewSchema schema, string column, string? maskColumn, int sequenceLength, int channels,
        LinformerTruncation truncation = LinformerTruncation.KeepStart, LinformerTokenizer? tokenizer = null,
        LinformerLongInputs longInputs = LinformerLongInputs.Truncate)
    {
        var col = Find(schema, column);
        if (!Enum.IsDefined(longInputs))
            throw new ArgumentOutOfRangeException("LongInputs", longInputs, $"LongInputs ({longInputs}) is not a {nameof(LinformerLongInputs)} value.");
        if (col.Type is TextDataViewType) return BindText(column, maskColumn, sequenceLength, truncation, tokenizer, longInputs);
        if (tokenizer is not null)
            throw new ArgumentException($"Tokenizer ({tokenizer.Name}) applies to a Text input column; column '{column}' is {col.Type}.", "Tokenizer");
        if (col.Type is not VectorDataViewType vector)
            throw Mismatch(column, "a vector of Single (float sequences) or Int32, Int64 or Key<UInt32> (token ids)", col.Type);
        var item = vector.ItemType;
        SequenceItemKind kind;
        int? keyCount = null;
        if (item == NumberDataViewType.Single) kind = SequenceItemKind.Single;
        else if (item == NumberDataViewType.Int32) kind = SequenceItemKind.Int32;
        else if (item == NumberDataViewType.Int64) kind = SequenceItemKind.Int64;
        else if (item is KeyDataViewType key && key.RawType == typeof(uint))
        {
            kind = SequenceItemKind.Key;
            keyCount = key.Count > int.MaxValue ? int.MaxValue : (int)key.Count;
        }
        else
            throw Mismatch(column, $"Vector<Single, N·channels> or Vector<Int32|Int64|Key<UInt32>, N> (known size or variable)", col.Type);
        if (!Enum.IsDefined(truncation))
            throw new ArgumentOutOfRangeException("Truncation", truncation, $"Truncation ({truncation}) is not a {nameof(LinformerTruncation)} value.");

        if (!vector.IsKnownSize)
        {
            if (sequenceLength <= 0)
                throw new ArgumentException(
                    $"SequenceLength must be set for the variable-length input column '{column}' of type VarVector<{item}>: it is the length N that shorter rows are padded to and longer rows cut to.",
                    "SequenceLength");
            int perPosition = kind == SequenceItemKind.Single ? Math.Max(1, channels) : 0;
            if (maskColumn is not null)
            {
                var m = Find(schema, maskColumn);
                if (m.Type is not VectorDataViewType { ItemType: BooleanDataViewType, IsKnownSize: false })
                    throw Mismatch(maskColumn, $"VarVector<Boolean> (one value per position of the variable-length input column '{column}')", m.Type);
            }
            return new InputBinding(column, kind, sequenceLength, perPosition, keyCount, maskColumn, VariableLength: true, Truncation: truncation, LongInputs: longInputs);
        }
        if (longInputs != LinformerLongInputs.Truncate)
            throw new ArgumentException(
                $"LongInputs ({longInputs}) applies to variable-length input columns; column '{column}' has a fixed length ({col.Type}), so no row is longer than the model's sequence length.",
                "LongInputs");
        int size = vector.Size;

        int n, c;
        if (kind == SequenceItemKind.Single)
        {
            (n, c) = (sequenceLength, channels) switch
            {
                (> 0, > 0) => (sequenceLength, channels),
                (> 0, _) when size % sequenceLength == 0 => (sequenceLength, size / sequenceLength),
                (_, > 0) when size % channels == 0 => (size / channels, channels),
                (0, 0) => (size, 1),
                _ => throw Mismatch(column, $"Vector<Single, {(sequenceLength > 0 ? sequenceLength + "·channels" : "N·" + channels)}>", col.Type),
            };
            if (n * c != size) throw Mismatch(column, $"Vector<Single, {n * c}> ({n} positions × {c} channels)", col.Type);
        }
        else
        {
            n = sequenceLength > 0 ? sequenceLength : size;
            c = 0;
            if (n != size) throw Mismatch(column, $"Vector<{item}, {n}>", col.Type);
        }

        if (maskColumn is not null)
        {
            var m = Find(schema, maskColumn);
            if (m.Type is not VectorDataViewType { ItemType: BooleanDataViewType } mv || mv.Size != n)
                throw Mismatch(maskColumn, $"Vector<Boolean, {n}>", m.Type);
        }
        return new InputBinding(column, kind, n, c, keyCount, maskColumn);
    }

    private static InputBinding BindText(string column, string? maskColumn, int sequenceLength,
        LinformerTruncation truncation, LinformerTokenizer? tokenizer, LinformerLongInputs longInputs)
    {
        if (tokenizer is null)
            throw new ArgumentException($"The Text input column '{column}' needs a tokenizer (Options.Tokenizer, e.g. LinformerTokenizer.Gpt2()).", "Tokenizer");
        if (sequenceLength <= 0)
            throw new ArgumentException(
                $"SequenceLength must be set for the Text input column '{column}': it is the number of tokens N that shorter texts are padded to and longer texts cut to.",
                "SequenceLength");
        if (maskColumn is not null)
            throw new ArgumentException($"MaskColumnName ('{maskColumn}') does not apply to the Text input column '{column}': its positions are the tokenizer's, and the padding after them is masked by itself.", "MaskColumnName");
        if (!Enum.IsDefined(truncation))
            throw new ArgumentOutOfRangeException("Truncation", truncation, $"Truncation ({truncation}) is not a {nameof(LinformerTruncation)} value.");
        return new InputBinding(column, SequenceItemKind.Text, sequenceLength, 0, null, null, VariableLength: true, Truncation: truncation, LongInputs: longInputs) { Tokenizer = tokenizer };
    }

    /// <summary>Checks that a schema offers the same columns with the same types this binding was made for.</summary>
    public void CheckCompatible(DataViewSchema schema)
    {
        var col = Find(schema, Column);
        var expected = ExpectedType();
        if (!col.Type.Equals(expected) && !(Kind == SequenceItemKind.Key && col.Type is VectorDataViewType { ItemType: KeyDataViewType k } v
                                            && k.RawType == typeof(uint) && v.Size == (VariableLength ? 0 : SequenceLength)))
            throw Mismatch(Column, expected.ToString()!, col.Type);
        if (MaskColumn is not null)
        {
            var m = Find(schema, MaskColumn);
            if (VariableLength)
            {
                if (m.Type is not VectorDataViewType { ItemType: BooleanDataViewType, IsKnownSize: false })
                    throw Mismatch(MaskColumn, $"VarVector<Boolean> (one value per position of the variable-length input column '{Column}')", m.Type);
            }
            else if (m.Type is not VectorDataViewType { ItemType: BooleanDataViewType } mv || mv.Size != SequenceLength)
                throw Mismatch(MaskColumn, $"Vector<Boolean, {SequenceLength}>", m.Type);
        }
    }

    /// <summary>The column type this binding reads (size 0: a variable-length vector).</summary>
    public DataViewType ExpectedType()
    {
        int size = VariableLength ? 0 : SequenceLength;
        return Kind switch
        {
            SequenceItemKind.Single => new VectorDataViewType(NumberDataViewType.Single, VariableLength ? 0 : SequenceLength * Channels),
            SequenceItemKind.Int32 => new VectorDataViewType(NumberDataViewType.Int32, size),
            SequenceItemKind.Int64 => new VectorDataViewType(NumberDataViewType.Int64, size),
            SequenceItemKind.Text => TextDataViewType.Instance,
            _ => new VectorDataViewType(new KeyDataViewType(typeof(uint), (ulong)(KeyCount ?? int.MaxValue)), size),
        };
    }

    /// <summary>The input columns a cursor must activate to read sequences.</summary>
    public IEnumerable<DataViewSchema.Column> Columns(DataViewSchema schema)
    {
        yield return schema[Column];
        if (MaskColumn is not null) yield return schema[MaskColumn];
    }

    internal static DataViewSchema.Column Find(DataViewSchema schema, string name)
        => schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException("inputSchema", $"Could not find input column '{name}'.");

    internal static ArgumentOutOfRangeException Mismatch(string column, string expected, DataViewType actual)
        => new("inputSchema", $"Schema mismatch for input column '{column}': expected {expected}, got {actual}.");
}
