using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Training;

/// <summary>
/// An <see cref="IDataView"/> whose rows are computed from their position when a cursor reads them and never stored:
/// "Tokens" (<c>Vector&lt;Int32, N&gt;</c>, token 0 of row p is p mod the vocabulary, the rest drawn from a
/// generator seeded by p) and "Label" (<c>Boolean</c>, token 0 below half the vocabulary). It counts what cursors
/// read, so a test can see how far ahead of training a reader is.
/// </summary>
internal sealed class GeneratedTokenRows : IDataView
{
    private readonly int sequenceLength;
    private readonly int vocabulary;
    private readonly Func<int, long> rowsOfPass;
    private int passes;

    /// <param name="rows">Rows of every pass.</param>
    /// <param name="sequenceLength">N.</param>
    /// <param name="vocabulary">Token ids are below it.</param>
    /// <param name="rowsOfPass">Rows of the i-th cursor (0-based) instead of <paramref name="rows"/>, to imitate data that changes between passes.</param>
    public GeneratedTokenRows(long rows, int sequenceLength, int vocabulary, Func<int, long>? rowsOfPass = null)
    {
        this.sequenceLength = sequenceLength;
        this.vocabulary = vocabulary;
        this.rowsOfPass = rowsOfPass ?? (_ => rows);
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Tokens", new VectorDataViewType(NumberDataViewType.Int32, sequenceLength));
        builder.AddColumn("Label", BooleanDataViewType.Instance);
        Schema = builder.ToSchema();
    }

    public DataViewSchema Schema { get; }
    public bool CanShuffle => false;

    /// <summary>Token rows read by the newest cursor that has "Tokens" active.</summary>
    public long TokenRowsReadByNewestCursor { get; private set; }

    /// <summary>Token rows read by all cursors together.</summary>
    public long TokenRowsRead { get; private set; }

    public long? GetRowCount() => null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = columnsNeeded.Select(c => c.Index).ToHashSet();
        if (active.Contains(0)) TokenRowsReadByNewestCursor = 0;
        return new Cursor(this, active, rowsOfPass(passes++));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    /// <summary>Row <paramref name="position"/>'s tokens.</summary>
    public void Fill(long position, Span<int> tokens)
    {
        var random = new Random(unchecked((int)position * 7919 + 1));
        tokens[0] = (int)(position % vocabulary);
        for (int i = 1; i < tokens.Length; i++) tokens[i] = random.Next(vocabulary);
    }

    private sealed class Cursor(GeneratedTokenRows view, HashSet<int> active, long rows) : DataViewRowCursor
    {
        private long position = -1;

        public override long Position => position;
        public override long Batch => 0;
        public override DataViewSchema Schema => view.Schema;
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (position + 1 >= rows) return false;
            position++;
            return true;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column)) throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            if (column.Index == 0)
            {
                ValueGetter<VBuffer<int>> tokens = (ref VBuffer<int> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, view.sequenceLength);
                    view.Fill(position, editor.Values);
                    value = editor.Commit();
                    view.TokenRowsReadByNewestCursor++;
                    view.TokenRowsRead++;
                };
                return (ValueGetter<TValue>)(Delegate)tokens;
            }
            ValueGetter<bool> label = (ref bool value) => value = position % view.vocabulary < view.vocabulary / 2;
            return (ValueGetter<TValue>)(Delegate)label;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) => id = new DataViewRowId((ulong)position, 0);
    }
}
