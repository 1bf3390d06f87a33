using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Data;

/// <summary>The output columns a transformer adds and how to compute them.</summary>
internal sealed record OutputBinding(string FeaturesColumn, string? ScoreColumn, bool ScoreIsVector, BatchEncoder Encoder, InputBinding Input,
    int Vocabulary, int? PaddingTokenId, int BatchSize)
{
    /// <summary>The input schema with the output columns appended (an output hides an input of the same name).</summary>
    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(FeaturesColumn, new VectorDataViewType(NumberDataViewType.Single, Encoder.FeatureSize));
        if (ScoreColumn is not null)
            builder.AddColumn(ScoreColumn, ScoreIsVector ? new VectorDataViewType(NumberDataViewType.Single, Encoder.ScoreSize) : NumberDataViewType.Single);
        return builder.ToSchema();
    }
}

/// <summary>
/// The lazy, batched result of <c>LinformerTransformer.Transform</c>: a cursor reads the sequence columns of
/// <see cref="OutputBinding.BatchSize"/> rows ahead through a second cursor over the same input, encodes them in one
/// forward pass, and serves the outputs row by row while pass-through columns come from the main input cursor.
/// Only the columns a consumer asks for are read.
/// </summary>
internal sealed class LinformerDataView : IDataView
{
    private readonly IDataView input;
    private readonly OutputBinding binding;

    public LinformerDataView(IDataView input, OutputBinding binding)
    {
        binding.Input.CheckCompatible(input.Schema);
        this.input = input;
        this.binding = binding;
        Schema = binding.OutputSchema(input.Schema);
    }

    public bool CanShuffle => false;   // the read-ahead cursor must see rows in the main cursor's order
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, columnsNeeded);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private int InputColumnCount => input.Schema.Count;

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly LinformerDataView parent;
        private readonly DataViewRowCursor main;
        private readonly DataViewRowCursor? ahead;
        private readonly SequenceReader? reader;
        private readonly SequenceBatch? batch;
        private readonly float[]? features;
        private readonly float[]? scores;
        private readonly bool[] active;
        private int served;          // rows of the current batch already served
        private long position = -1;

        public Cursor(LinformerDataView parent, IEnumerable<DataViewSchema.Column> columnsNeeded)
        {
            this.parent = parent;
            var b = parent.binding;
            active = new bool[parent.Schema.Count];
            foreach (var c in columnsNeeded) active[c.Index] = true;
            int inputCount = parent.InputColumnCount;
            bool outputsActive = active.Skip(inputCount).Any(x => x);
            var passThrough = parent.input.Schema.Where(c => active[c.Index]).ToList();
            main = parent.input.GetRowCursor(passThrough);
            if (outputsActive)
            {
                ahead = parent.input.GetRowCursor(b.Input.Columns(parent.input.Schema));
                reader = new SequenceReader(b.Input, ahead, b.Vocabulary, b.PaddingTokenId);
                batch = new SequenceBatch(b.Input, b.BatchSize);
                features = new float[b.BatchSize * b.Encoder.FeatureSize];
                scores = b.ScoreColumn is null ? null : new float[b.BatchSize * b.Encoder.ScoreSize];
            }
        }

        public override DataViewSchema Schema => parent.Schema;
        public override long Position => position;
        public override long Batch => 0;

        public override ValueGetter<DataViewRowId> GetIdGetter() => main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => active[column.Index];

        public override bool MoveNext()
        {
            parent.binding.Encoder.ThrowIfDisposed();
            if (!main.MoveNext()) return false;
            position++;
            if (batch is not null)
            {
                served++;
                if (served > batch.Count) Refill();
            }
            return true;
        }

        private void Refill()
        {
            batch!.Count = 0;
            while (batch.Count < batch.Capacity && ahead!.MoveNext()) batch.Add(reader!);
            if (batch.Count == 0) throw new InvalidOperationException("The input produced fewer rows for encoding than for its other columns.");
            parent.binding.Encoder.Encode(batch, features!, scores);
            served = 1;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!active[column.Index]) throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            int inputCount = parent.InputColumnCount;
            if (column.Index < inputCount) return main.GetGetter<TValue>(parent.input.Schema[column.Index]);
            var b = parent.binding;
            if (column.Index == inputCount)
                return (ValueGetter<TValue>)(Delegate)VectorGetter(features!, b.Encoder.FeatureSize);
            if (b.ScoreIsVector) return (ValueGetter<TValue>)(Delegate)VectorGetter(scores!, b.Encoder.ScoreSize);
            ValueGetter<float> scalar = (ref float value) => value = scores![served - 1];
            return (ValueGetter<TValue>)(Delegate)scalar;
        }

        private ValueGetter<VBuffer<float>> VectorGetter(float[] source, int size)
            => (ref VBuffer<float> value) =>
            {
                var editor = VBufferEditor.Create(ref value, size);
                source.AsSpan((served - 1) * size, size).CopyTo(editor.Values);
                value = editor.Commit();
            };

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                main.Dispose();
                ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

/// <summary>Single-row mapping for <c>PredictionEngine</c>: encodes the current input row on demand, once per row.</summary>
internal sealed class LinformerRowMapper : IRowToRowMapper
{
    private readonly OutputBinding binding;

    public LinformerRowMapper(DataViewSchema inputSchema, OutputBinding binding)
    {
        binding.Input.CheckCompatible(inputSchema);
        InputSchema = inputSchema;
        this.binding = binding;
        OutputSchema = binding.OutputSchema(inputSchema);
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var cols = dependingColumns.ToList();
        var needed = cols.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
        if (cols.Any(c => c.Index >= InputSchema.Count)) needed.AddRange(binding.Input.Columns(InputSchema));
        return needed.DistinctBy(c => c.Index);
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        => new Row(this, input, activeColumns);

    private sealed class Row : DataViewRow
    {
        private readonly LinformerRowMapper mapper;
        private readonly DataViewRow input;
        private readonly bool[] active;
        private readonly SequenceReader? reader;
        private readonly SequenceBatch? batch;
        private readonly float[]? features;
        private readonly float[]? scores;
        private long computedFor = -1;

        public Row(LinformerRowMapper mapper, DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            this.mapper = mapper;
            this.input = input;
            active = new bool[mapper.OutputSchema.Count];
            foreach (var c in activeColumns) active[c.Index] = true;
            var b = mapper.binding;
            if (active.Skip(mapper.InputSchema.Count).Any(x => x))
            {
                reader = new SequenceReader(b.Input, input, b.Vocabulary, b.PaddingTokenId);
                batch = new SequenceBatch(b.Input, 1);
                features = new float[b.Encoder.FeatureSize];
                scores = b.ScoreColumn is null ? null : new float[b.Encoder.ScoreSize];
            }
        }

        public override DataViewSchema Schema => mapper.OutputSchema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => active[column.Index];

        private void Ensure()
        {
            mapper.binding.Encoder.ThrowIfDisposed();
            if (computedFor == input.Position && input.Position >= 0) return;
            batch!.Count = 0;
            batch.Add(reader!);
            mapper.binding.Encoder.Encode(batch, features!, scores);
            computedFor = input.Position;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = mapper.InputSchema.Count;
            if (column.Index < inputCount) return input.GetGetter<TValue>(mapper.InputSchema[column.Index]);
            var b = mapper.binding;
            if (column.Index == inputCount)
            {
                ValueGetter<VBuffer<float>> f = (ref VBuffer<float> value) => { Ensure(); Fill(ref value, features!); };
                return (ValueGetter<TValue>)(Delegate)f;
            }
            if (b.ScoreIsVector)
            {
                ValueGetter<VBuffer<float>> s = (ref VBuffer<float> value) => { Ensure(); Fill(ref value, scores!); };
                return (ValueGetter<TValue>)(Delegate)s;
            }
            ValueGetter<float> scalar = (ref float value) => { Ensure(); value = scores![0]; };
            return (ValueGetter<TValue>)(Delegate)scalar;
        }

        private static void Fill(ref VBuffer<float> value, float[] source)
        {
            var editor = VBufferEditor.Create(ref value, source.Length);
            source.CopyTo(editor.Values);
            value = editor.Commit();
        }
    }
}
