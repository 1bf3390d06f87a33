using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Data;

/// <summary>
/// The output columns a transformer adds and how to compute them: the encoding, then the head's columns
/// (<see cref="Head"/>), or for models saved before format 1.3 the one score column <see cref="LegacyScoreColumn"/>
/// (class probabilities or the regression value).
/// </summary>
internal sealed record OutputBinding(string FeaturesColumn, HeadColumns? Head, string? LegacyScoreColumn, ISequenceEncoder Encoder, InputBinding Input,
    int Vocabulary, int? PaddingTokenId, int BatchSize)
{
    private enum Value { Features, LegacyScore, Score, Probability, PredictedLabel }

    private (string Name, Value Value)[] Columns { get; } = ColumnsOf(FeaturesColumn, Head, LegacyScoreColumn);

    private static (string, Value)[] ColumnsOf(string features, HeadColumns? head, string? legacyScore)
    {
        var columns = new List<(string, Value)> { (features, Value.Features) };
        if (head is not null)
            columns.AddRange(head.Columns().Select(c => (c.Name, c.Value switch
            {
                HeadValue.Score => Value.Score,
                HeadValue.Probability => Value.Probability,
                _ => Value.PredictedLabel,
            })));
        else if (legacyScore is not null) columns.Add((legacyScore, Value.LegacyScore));
        return columns.ToArray();
    }

    /// <summary>Whether the head's output is needed to serve these output columns (indices relative to the first output column).</summary>
    public bool NeedsHead(IEnumerable<int> outputIndices) => outputIndices.Any(i => Columns[i].Value != Value.Features);

    /// <summary>The input schema with the output columns appended (an output hides an input of the same name).</summary>
    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        foreach (var (name, value) in Columns)
        {
            switch (value)
            {
                case Value.Features: builder.AddColumn(name, new VectorDataViewType(NumberDataViewType.Single, Encoder.FeatureSize)); break;
                case Value.LegacyScore:
                    builder.AddColumn(name, Encoder.HeadOutput == HeadOutput.Probabilities ? new VectorDataViewType(NumberDataViewType.Single, Encoder.HeadSize) : NumberDataViewType.Single);
                    break;
                default:
                    var headValue = HeadValueOf(value);
                    builder.AddColumn(name, Head!.TypeOf(headValue), Head.AnnotationsOf(headValue, input));
                    break;
            }
        }
        return builder.ToSchema();
    }

    private static HeadValue HeadValueOf(Value value) => value switch
    {
        Value.Score => HeadValue.Score,
        Value.Probability => HeadValue.Probability,
        _ => HeadValue.PredictedLabel,
    };

    /// <summary>
    /// The getter of output column <paramref name="column"/> (index <paramref name="outputIndex"/> among the outputs):
    /// it calls <paramref name="ensure"/> (if any), then reads row <paramref name="row"/>() of <paramref name="features"/>
    /// (FeatureSize floats per row) and <paramref name="head"/> (HeadSize floats per row).
    /// </summary>
    public ValueGetter<TValue> Getter<TValue>(DataViewSchema.Column column, int outputIndex, Func<int> row, float[] features, float[]? head, Action? ensure)
    {
        int f = Encoder.FeatureSize, h = Encoder.HeadSize;
        Delegate getter = Columns[outputIndex].Value switch
        {
            Value.Features => VectorGetter(features, f, row, ensure),
            Value.LegacyScore when Encoder.HeadOutput == HeadOutput.Probabilities => VectorGetter(head!, h, row, ensure),
            Value.Score when Head!.Label == LabelKind.Key => VectorGetter(head!, h, row, ensure),
            Value.LegacyScore or Value.Score => (ValueGetter<float>)((ref float v) => { ensure?.Invoke(); v = head![row() * h]; }),
            Value.Probability => (ValueGetter<float>)((ref float v) => { ensure?.Invoke(); v = head![row() * h + 1]; }),
            Value.PredictedLabel when Head!.Label == LabelKind.Boolean =>
                (ValueGetter<bool>)((ref bool v) => { ensure?.Invoke(); v = head![row() * h] > 0; }),   // log-odds > 0 ⇔ p₁ > 0.5, as ML.NET thresholds Score at 0
            _ => (ValueGetter<uint>)((ref uint v) => { ensure?.Invoke(); v = PredictedKey(head!.AsSpan(row() * h, h)); }),
        };
        if (getter is not ValueGetter<TValue> typed)
            throw new InvalidOperationException($"Invalid TValue in GetGetter for column '{column.Name}': expected {column.Type.RawType}, got {typeof(TValue)}.");
        return typed;
    }

    /// <summary>The most probable class as a 1-based key (0, ML.NET's missing key, when the probabilities are NaN).</summary>
    private static uint PredictedKey(ReadOnlySpan<float> probabilities)
    {
        int best = -1;
        for (int i = 0; i < probabilities.Length; i++)
            if (probabilities[i] > (best < 0 ? float.NegativeInfinity : probabilities[best])) best = i;
        return (uint)(best + 1);
    }

    private static ValueGetter<VBuffer<float>> VectorGetter(float[] source, int size, Func<int> row, Action? ensure)
        => (ref VBuffer<float> value) =>
        {
            ensure?.Invoke();
            var editor = VBufferEditor.Create(ref value, size);
            source.AsSpan(row() * size, size).CopyTo(editor.Values);
            value = editor.Commit();
        };
}

/// <summary>
/// The lazy, batched result of <c>LinformerTransformer.Transform</c>: a cursor reads the sequence columns of
/// <see cref="OutputBinding.BatchSize"/> rows ahead through a second cursor over the same input, encodes them in one
/// forward pass, and serves the outputs row by row while pass-through columns come from the main input cursor.
/// Only the columns a consumer asks for are read. With <see cref="LinformerLongInputs.Windows"/> the rows' windows are
/// encoded instead (<see cref="WindowedEncoder"/>), at most <see cref="OutputBinding.BatchSize"/> windows per pass.
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
        private readonly WindowedEncoder? windowed;
        private readonly float[]? features;
        private readonly float[]? head;
        private readonly bool[] active;
        private int served;          // rows of the current batch already served
        private int filled;          // rows in the current batch
        private long position = -1;

        public Cursor(LinformerDataView parent, IEnumerable<DataViewSchema.Column> columnsNeeded)
        {
            this.parent = parent;
            var b = parent.binding;
            active = new bool[parent.Schema.Count];
            foreach (var c in columnsNeeded) active[c.Index] = true;
            int inputCount = parent.InputColumnCount;
            var activeOutputs = Enumerable.Range(0, active.Length - inputCount).Where(i => active[inputCount + i]).ToList();
            bool outputsActive = activeOutputs.Count > 0;
            var passThrough = parent.input.Schema.Where(c => active[c.Index]).ToList();
            main = parent.input.GetRowCursor(passThrough);
            if (outputsActive)
            {
                ahead = parent.input.GetRowCursor(b.Input.Columns(parent.input.Schema));
                reader = new SequenceReader(b.Input, ahead, b.Encoder.Layout, b.PaddingTokenId);
                features = new float[b.BatchSize * b.Encoder.FeatureSize];
                head = b.NeedsHead(activeOutputs) ? new float[b.BatchSize * b.Encoder.HeadSize] : null;
                if (b.Input.LongInputs == LinformerLongInputs.Windows) windowed = new WindowedEncoder(WindowedEncoder.Engine(b.Encoder), b.Input, b.BatchSize, b.BatchSize, head is not null);
                else batch = new SequenceBatch(b.Input, b.BatchSize);
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
            if (reader is not null)
            {
                served++;
                if (served > filled) Refill();
            }
            return true;
        }

        private void Refill()
        {
            int capacity = parent.binding.BatchSize;
            if (windowed is not null)
            {
                while (windowed.Count < capacity && ahead!.MoveNext()) windowed.Add(reader!);
                filled = windowed.Count;
                if (filled > 0) windowed.Finish(features!, head);
            }
            else
            {
                batch!.Count = 0;
                while (batch.Count < capacity && ahead!.MoveNext()) batch.Add(reader!);
                filled = batch.Count;
                if (filled > 0) parent.binding.Encoder.Encode(batch, features!, head);
            }
            if (filled == 0) throw new InvalidOperationException("The input produced fewer rows for encoding than for its other columns.");
            served = 1;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!active[column.Index]) throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            int inputCount = parent.InputColumnCount;
            if (column.Index < inputCount) return main.GetGetter<TValue>(parent.input.Schema[column.Index]);
            return parent.binding.Getter<TValue>(column, column.Index - inputCount, () => served - 1, features!, head, ensure: null);
        }

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
        private readonly WindowedEncoder? windowed;
        private readonly float[]? features;
        private readonly float[]? head;
        private long computedFor = -1;

        public Row(LinformerRowMapper mapper, DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            this.mapper = mapper;
            this.input = input;
            active = new bool[mapper.OutputSchema.Count];
            foreach (var c in activeColumns) active[c.Index] = true;
            var b = mapper.binding;
            int inputCount = mapper.InputSchema.Count;
            var activeOutputs = Enumerable.Range(0, active.Length - inputCount).Where(i => active[inputCount + i]).ToList();
            if (activeOutputs.Count > 0)
            {
                reader = new SequenceReader(b.Input, input, b.Encoder.Layout, b.PaddingTokenId);
                features = new float[b.Encoder.FeatureSize];
                head = b.NeedsHead(activeOutputs) ? new float[b.Encoder.HeadSize] : null;
                // One row, its windows up to BatchSize per forward pass (a row of at most N is one window, as without windows).
                if (b.Input.LongInputs == LinformerLongInputs.Windows) windowed = new WindowedEncoder(WindowedEncoder.Engine(b.Encoder), b.Input, 1, b.BatchSize, head is not null);
                else batch = new SequenceBatch(b.Input, 1);
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
            if (windowed is not null)
            {
                windowed.Reset();
                windowed.Add(reader!);
                windowed.Finish(features!, head);
            }
            else
            {
                batch!.Count = 0;
                batch.Add(reader!);
                mapper.binding.Encoder.Encode(batch, features!, head);
            }
            computedFor = input.Position;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = mapper.InputSchema.Count;
            if (column.Index < inputCount) return input.GetGetter<TValue>(mapper.InputSchema[column.Index]);
            if (!active[column.Index]) throw new InvalidOperationException($"Column '{column.Name}' is not active in this row.");
            return mapper.binding.Getter<TValue>(column, column.Index - inputCount, () => 0, features!, head, Ensure);
        }
    }
}
