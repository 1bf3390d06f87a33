using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Data;

/// <summary>The type of label a supervised head was trained on; it decides the head's output columns.</summary>
internal enum LabelKind
{
    /// <summary>Boolean label: binary classification (Score = log-odds, Probability, PredictedLabel Boolean).</summary>
    Boolean,
    /// <summary>Key label: multiclass classification (Score = class probabilities, PredictedLabel Key).</summary>
    Key,
    /// <summary>Single label: regression (Score).</summary>
    Single,
}

/// <summary>
/// The head's output columns, named and typed as ML.NET's own trainers name and type them, so that
/// <c>BinaryClassification.Evaluate</c>, <c>MulticlassClassification.Evaluate</c> and <c>Regression.Evaluate</c>
/// read them directly. Saved with the model.
/// </summary>
/// <param name="Label">The label kind the head was trained on.</param>
/// <param name="Score">Score column: log-odds (Boolean label), class probabilities (Key label) or the regression value.</param>
/// <param name="Probability">Probability column (Boolean label only; null: not emitted).</param>
/// <param name="PredictedLabel">Predicted-label column (Boolean and Key labels; null: not emitted).</param>
/// <param name="Classes">Classes L of a Key label (its key count).</param>
/// <param name="KeyValues">The Key label's values (its KeyValues annotation), or null when it had none.</param>
internal sealed record HeadColumns(LabelKind Label, string Score, string? Probability, string? PredictedLabel, int Classes, LabelKeyValues? KeyValues)
{
    // ML.NET's annotation kinds and values for trainer outputs (AnnotationUtils.Kinds / AnnotationUtils.Const, internal to ML.NET).
    internal const string ScoreColumnSetIdKind = "ScoreColumnSetId";
    internal const string ScoreColumnKindKind = "ScoreColumnKind";
    internal const string ScoreValueKindKind = "ScoreValueKind";
    internal const string IsNormalizedKind = "IsNormalized";

    /// <summary>The value of the <c>ScoreColumnKind</c> annotation: ML.NET's name of the task.</summary>
    [JsonIgnore]
    public string TaskKind => Label switch
    {
        LabelKind.Boolean => "BinaryClassification",
        LabelKind.Key => "MulticlassClassification",
        _ => "Regression",
    };

    /// <summary>The columns the head adds, in order: Score, then Probability and PredictedLabel where the label kind has them.</summary>
    public IEnumerable<(string Name, HeadValue Value)> Columns()
        => ValuesOf(Label).Select(v => (Name: NameOf(v), Value: v)).Where(c => c.Name is not null).Select(c => (c.Name!, c.Value));

    private string? NameOf(HeadValue value) => value switch
    {
        HeadValue.Score => Score,
        HeadValue.Probability => Probability,
        _ => PredictedLabel,
    };

    /// <summary>The column type of one head output.</summary>
    public DataViewType TypeOf(HeadValue value) => value switch
    {
        HeadValue.Score when Label == LabelKind.Key => new VectorDataViewType(NumberDataViewType.Single, Classes),
        HeadValue.PredictedLabel when Label == LabelKind.Key => new KeyDataViewType(typeof(uint), Classes),
        HeadValue.PredictedLabel => BooleanDataViewType.Instance,
        _ => NumberDataViewType.Single,
    };

    /// <summary>
    /// The annotations ML.NET's scorers put on the same column: <c>ScoreColumnSetId</c> (one more than the largest in
    /// <paramref name="input"/>), <c>ScoreColumnKind</c>, <c>ScoreValueKind</c>; <c>IsNormalized</c> on Probability;
    /// the label's key values as <c>SlotNames</c> of a multiclass Score (text key values only, as ML.NET does) and as
    /// <c>KeyValues</c> of a multiclass PredictedLabel.
    /// </summary>
    public DataViewSchema.Annotations AnnotationsOf(HeadValue value, DataViewSchema input)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        if (value == HeadValue.Score && Label == LabelKind.Key && KeyValues is { IsText: true })
            KeyValues.AddTo(builder, AnnotationUtilsKinds.SlotNames);
        if (value == HeadValue.PredictedLabel && Label == LabelKind.Key && KeyValues is not null)
            KeyValues.AddTo(builder, AnnotationUtilsKinds.KeyValues);
        uint setId = NextScoreColumnSetId(input);
        builder.Add(ScoreColumnSetIdKind, new KeyDataViewType(typeof(uint), int.MaxValue), (ref uint v) => v = setId);
        var task = TaskKind.AsMemory();
        builder.Add(ScoreColumnKindKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = task);
        var valueKind = value.ToString().AsMemory();
        builder.Add(ScoreValueKindKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = valueKind);
        if (value == HeadValue.Probability)
            builder.Add(IsNormalizedKind, BooleanDataViewType.Instance, (ref bool v) => v = true);
        return builder.ToAnnotations();
    }

    /// <summary>One more than the largest <c>ScoreColumnSetId</c> among the input's columns (as ML.NET's scorers number them).</summary>
    private static uint NextScoreColumnSetId(DataViewSchema input)
    {
        uint max = 0;
        foreach (var column in input)
        {
            var type = column.Annotations.Schema.GetColumnOrNull(ScoreColumnSetIdKind)?.Type;
            if (type is not KeyDataViewType || type.RawType != typeof(uint)) continue;
            uint value = 0;
            column.Annotations.GetValue(ScoreColumnSetIdKind, ref value);
            max = Math.Max(max, value);
        }
        return checked(max + 1);
    }

    /// <summary>
    /// The shapes of the annotations <see cref="AnnotationsOf"/> gives, for the estimator's promised schema;
    /// <paramref name="labelKeyValues"/> is the shape of the Key label's KeyValues annotation, if it has one.
    /// </summary>
    public static IEnumerable<(string Name, SchemaShape.Column.VectorKind Kind, DataViewType ItemType, bool IsKey)> AnnotationShapesOf(
        LabelKind label, HeadValue value, SchemaShape.Column? labelKeyValues)
    {
        bool keyValues = label == LabelKind.Key && labelKeyValues is { Kind: SchemaShape.Column.VectorKind.Vector };
        if (value == HeadValue.Score && keyValues && labelKeyValues!.Value.ItemType is TextDataViewType)
            yield return (AnnotationUtilsKinds.SlotNames, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false);
        if (value == HeadValue.PredictedLabel && keyValues)
            yield return (AnnotationUtilsKinds.KeyValues, SchemaShape.Column.VectorKind.Vector, labelKeyValues!.Value.ItemType, false);
        yield return (ScoreColumnSetIdKind, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true);
        yield return (ScoreColumnKindKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false);
        yield return (ScoreValueKindKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false);
        if (value == HeadValue.Probability)
            yield return (IsNormalizedKind, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false);
    }

    /// <summary>The head outputs a label kind has, in order (ML.NET's trainers: regression Score; binary Score,
    /// Probability, PredictedLabel; multiclass Score, PredictedLabel).</summary>
    public static IEnumerable<HeadValue> ValuesOf(LabelKind label)
    {
        yield return HeadValue.Score;
        if (label == LabelKind.Boolean) yield return HeadValue.Probability;
        if (label != LabelKind.Single) yield return HeadValue.PredictedLabel;
    }
}

/// <summary>One output of the head.</summary>
internal enum HeadValue { Score, Probability, PredictedLabel }

/// <summary>Annotation kinds that ML.NET exposes publicly through its builder helpers only.</summary>
internal static class AnnotationUtilsKinds
{
    public const string SlotNames = "SlotNames";
    public const string KeyValues = "KeyValues";
}

/// <summary>
/// A Key label's values (its <c>KeyValues</c> annotation), stored with the model as text so that the head's
/// PredictedLabel carries them with their original item type (MapKeyToValue then gives back the label's values).
/// </summary>
/// <param name="ItemType">The item type's name: String, Boolean, Single, Double, SByte, Byte, Int16, UInt16, Int32, UInt32, Int64 or UInt64.</param>
/// <param name="Values">The values, culture-invariant, round-trip formatted.</param>
internal sealed record LabelKeyValues(string ItemType, string[] Values)
{
    private static readonly Dictionary<string, PrimitiveDataViewType> Types = new(StringComparer.Ordinal)
    {
        ["String"] = TextDataViewType.Instance,
        ["Boolean"] = BooleanDataViewType.Instance,
        ["Single"] = NumberDataViewType.Single,
        ["Double"] = NumberDataViewType.Double,
        ["SByte"] = NumberDataViewType.SByte,
        ["Byte"] = NumberDataViewType.Byte,
        ["Int16"] = NumberDataViewType.Int16,
        ["UInt16"] = NumberDataViewType.UInt16,
        ["Int32"] = NumberDataViewType.Int32,
        ["UInt32"] = NumberDataViewType.UInt32,
        ["Int64"] = NumberDataViewType.Int64,
        ["UInt64"] = NumberDataViewType.UInt64,
    };

    /// <summary>Whether the values are text (ML.NET then also uses them as the Score's slot names).</summary>
    [JsonIgnore]
    public bool IsText => ItemType == "String";

    /// <summary>Whether <see cref="ItemType"/> names a type this format stores.</summary>
    [JsonIgnore]
    public bool IsKnownType => Types.ContainsKey(ItemType ?? "");

    /// <summary>
    /// The key values of Key label <paramref name="label"/>, or null when it has none (or they do not match its key
    /// count). Throws for key values of a type the model cannot store.
    /// </summary>
    public static LabelKeyValues? Read(DataViewSchema.Column label)
    {
        var key = (KeyDataViewType)label.Type;
        if (label.Annotations.Schema.GetColumnOrNull(AnnotationUtilsKinds.KeyValues)?.Type is not VectorDataViewType { IsKnownSize: true } type
            || type.Size != (int)key.Count)
            return null;
        var name = type.ItemType.RawType == typeof(ReadOnlyMemory<char>) ? "String" : type.ItemType.RawType.Name;
        if (!Types.ContainsKey(name))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Schema mismatch for label column '{label.Name}': expected key values of type String, Boolean or a number, got {type}.");
        string[] values = name switch
        {
            "String" => Get<ReadOnlyMemory<char>>(label, v => v.ToString()),
            "Boolean" => Get<bool>(label, v => v ? "true" : "false"),
            "Single" => Get<float>(label, v => v.ToString("R", CultureInfo.InvariantCulture)),
            "Double" => Get<double>(label, v => v.ToString("R", CultureInfo.InvariantCulture)),
            "SByte" => Get<sbyte>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            "Byte" => Get<byte>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            "Int16" => Get<short>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            "UInt16" => Get<ushort>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            "Int32" => Get<int>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            "UInt32" => Get<uint>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            "Int64" => Get<long>(label, v => v.ToString(CultureInfo.InvariantCulture)),
            _ => Get<ulong>(label, v => v.ToString(CultureInfo.InvariantCulture)),
        };
        return new LabelKeyValues(name, values);
    }

    private static string[] Get<T>(DataViewSchema.Column label, Func<T, string> format)
    {
        var buffer = default(VBuffer<T>);
        label.Annotations.GetValue(AnnotationUtilsKinds.KeyValues, ref buffer);
        return buffer.DenseValues().Select(format).ToArray();
    }

    /// <summary>Adds the values as annotation <paramref name="kind"/> (KeyValues or SlotNames) of their item type.</summary>
    public void AddTo(DataViewSchema.Annotations.Builder builder, string kind)
    {
        switch (ItemType)
        {
            case "String": Add(builder, kind, TextDataViewType.Instance, Values.Select(v => v.AsMemory()).ToArray()); break;
            case "Boolean": Add(builder, kind, BooleanDataViewType.Instance, Values.Select(v => bool.Parse(v)).ToArray()); break;
            case "Single": Add(builder, kind, NumberDataViewType.Single, Values.Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "Double": Add(builder, kind, NumberDataViewType.Double, Values.Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "SByte": Add(builder, kind, NumberDataViewType.SByte, Values.Select(v => sbyte.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "Byte": Add(builder, kind, NumberDataViewType.Byte, Values.Select(v => byte.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "Int16": Add(builder, kind, NumberDataViewType.Int16, Values.Select(v => short.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "UInt16": Add(builder, kind, NumberDataViewType.UInt16, Values.Select(v => ushort.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "Int32": Add(builder, kind, NumberDataViewType.Int32, Values.Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "UInt32": Add(builder, kind, NumberDataViewType.UInt32, Values.Select(v => uint.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "Int64": Add(builder, kind, NumberDataViewType.Int64, Values.Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            case "UInt64": Add(builder, kind, NumberDataViewType.UInt64, Values.Select(v => ulong.Parse(v, CultureInfo.InvariantCulture)).ToArray()); break;
            default: throw new InvalidDataException($"The Linformer model's stored label key values have the unknown item type '{ItemType}'.");
        }
    }

    private static void Add<T>(DataViewSchema.Annotations.Builder builder, string kind, PrimitiveDataViewType type, T[] values)
    {
        ValueGetter<VBuffer<T>> getter = (ref VBuffer<T> value) =>
        {
            var editor = VBufferEditor.Create(ref value, values.Length);
            values.CopyTo(editor.Values);
            value = editor.Commit();
        };
        builder.Add(kind, new VectorDataViewType(type, values.Length), getter);
    }
}
