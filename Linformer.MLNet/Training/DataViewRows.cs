using System.Globalization;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Training;

/// <summary>
/// Training rows read from an <see cref="IDataView"/> cursor, one row at a time and one pass per epoch: the
/// sequence (and mask) through <see cref="SequenceReader"/>, the label (Key → class, missing keys skipped as ML.NET's
/// trainers skip them; Boolean → class 0/1; Single → regression target, finite). Rows the selection leaves out are
/// passed over without reading their values, so upstream columns are not computed for them.
/// </summary>
internal sealed class DataViewRows : TrainingRows
{
    private readonly IDataView data;
    private readonly TokenLayout layout;
    private readonly int? paddingTokenId;
    private readonly string? labelName;
    private readonly DataViewSchema.Column? label;

    /// <param name="data">The rows.</param>
    /// <param name="binding">The sequence and mask columns (checked against <paramref name="data"/>'s schema by the caller).</param>
    /// <param name="layout">The token id layout of the network (vocabulary and reserved ids; token input).</param>
    /// <param name="paddingTokenId">Token id that marks padding when there is no mask column.</param>
    /// <param name="labelColumn">The label column (Key, Boolean or Single), or null for self-supervised training.</param>
    /// <param name="selection">Which rows to read.</param>
    public DataViewRows(IDataView data, InputBinding binding, TokenLayout layout, int? paddingTokenId, string? labelColumn, RowSelection selection)
    {
        this.data = data;
        Binding = binding;
        this.layout = layout;
        this.paddingTokenId = paddingTokenId;
        labelName = labelColumn;
        label = labelColumn is null ? null : InputBinding.Find(data.Schema, labelColumn);
        Selection = selection;
    }

    public override InputBinding Binding { get; }
    public override RowSelection Selection { get; }

    protected override int CountRows()
    {
        // Only a Key label can drop a row; other columns stay inactive, so the count computes nothing upstream.
        bool keyLabel = label is { Type: KeyDataViewType };
        using var cursor = data.GetRowCursor(keyLabel ? [label!.Value] : []);
        var getter = keyLabel ? cursor.GetGetter<uint>(label!.Value) : null;
        uint key = 0;
        long position = -1, kept = 0;
        while (cursor.MoveNext())
        {
            position++;
            if (!Selection.Keeps(position)) continue;
            if (getter is not null)
            {
                getter(ref key);
                if (key == 0) continue;
            }
            kept++;
        }
        if (kept > int.MaxValue)
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"The training data has {kept} rows; Fit reads at most {int.MaxValue} per epoch."));
        return (int)kept;
    }

    public override RowPass Open() => new Pass(this);

    private sealed class Pass : RowPass
    {
        private readonly DataViewRows rows;
        private readonly DataViewRowCursor cursor;
        private readonly SequenceReader reader;
        private readonly ValueGetter<uint>? keyLabel;
        private readonly ValueGetter<bool>? boolLabel;
        private readonly ValueGetter<float>? floatLabel;
        private long position = -1;
        private uint key;
        private bool flag;
        private float value;

        public Pass(DataViewRows rows)
        {
            this.rows = rows;
            var columns = rows.Binding.Columns(rows.data.Schema).ToList();
            if (rows.label is { } l) columns.Add(l);
            cursor = rows.data.GetRowCursor(columns);
            try
            {
                reader = new SequenceReader(rows.Binding, cursor, rows.layout, rows.paddingTokenId);
                if (rows.label is { } lc)
                {
                    if (lc.Type is KeyDataViewType) keyLabel = cursor.GetGetter<uint>(lc);
                    else if (lc.Type is BooleanDataViewType) boolLabel = cursor.GetGetter<bool>(lc);
                    else floatLabel = cursor.GetGetter<float>(lc);
                }
            }
            catch
            {
                cursor.Dispose();
                throw;
            }
        }

        public override bool ReadNext(LabelledBatch batch, int slot)
        {
            while (cursor.MoveNext())
            {
                position++;
                if (!rows.Selection.Keeps(position)) continue;
                if (keyLabel is not null)
                {
                    keyLabel(ref key);
                    if (key == 0) continue;   // missing label: ML.NET trainers skip such rows too
                    batch.ClassLabels[slot] = key - 1L;
                }
                else if (boolLabel is not null)
                {
                    boolLabel(ref flag);
                    batch.ClassLabels[slot] = flag ? 1 : 0;
                }
                else if (floatLabel is not null)
                {
                    floatLabel(ref value);
                    if (!float.IsFinite(value))
                        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Label column '{rows.labelName}' holds {value} in row {cursor.Position}; regression labels must be finite."));
                    batch.RegressionTargets[slot] = value;
                }
                batch.Rows.Read(reader, slot);
                return true;
            }
            return false;
        }

        public override void Dispose() => cursor.Dispose();
    }
}
