using System.Runtime.CompilerServices;
using Linformer.MLNet.Interop;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

// The build weaves this marker into ML.NET's LoadableClassAttribute (LinformerWeaveLoadableClasses in the csproj);
// IgnoresAccessChecksTo (the library's internal declaration, visible here through InternalsVisibleTo) lets the
// runtime create that internal attribute when ML.NET scans this assembly.
[assembly: IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: MLNetLoadableModel(typeof(Linformer.MLNet.Tests.Persistence.AddConstantTransformer),
    "Add constant (test)", Linformer.MLNet.Tests.Persistence.AddConstantTransformer.LoaderSignature)]

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// A test-only transformer, <c>Output = Input + Constant</c> on a <see cref="float"/> column, written only against
/// ML.NET's public interfaces and <see cref="ModelContextBridge"/>: the smallest thing that proves a third-party
/// transformer saves into and loads from an ordinary ML.NET model zip.
/// </summary>
/// <remarks>
/// Model entry: the header (format <see cref="ModelSignature"/>), the two column names through the string table in
/// <c>Model.key</c>, and the constant in a separate binary entry <see cref="ConstantEntry"/> (where the real
/// encoder keeps its weights).
/// </remarks>
internal sealed class AddConstantTransformer : ITransformer, ICanSaveModel
{
    public const string LoaderSignature = "LinformerTestAddConstant"; // 24 characters: ML.NET's limit
    public const string ModelSignature = "ADDCONST";
    public const string ConstantEntry = "Constant.bin";
    public const uint FormatVersion = 0x00010001;

    /// <summary>What this build writes and reads.</summary>
    public static readonly ModelVersionInfo Format =
        ModelVersionInfo.ForType(typeof(AddConstantTransformer), ModelSignature, FormatVersion, FormatVersion, FormatVersion, LoaderSignature);

    private readonly ModelVersionInfo _writeAs;

    /// <param name="inputColumn">The <see cref="float"/> column to read.</param>
    /// <param name="outputColumn">The column to add.</param>
    /// <param name="constant">What to add.</param>
    /// <param name="writeAs">Tests only: stamp saved models with another format version.</param>
    public AddConstantTransformer(string inputColumn, string outputColumn, float constant, ModelVersionInfo? writeAs = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumn);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumn);
        InputColumn = inputColumn;
        OutputColumn = outputColumn;
        Constant = constant;
        _writeAs = writeAs ?? Format;
    }

    public string InputColumn { get; }
    public string OutputColumn { get; }
    public float Constant { get; }

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Mapper(this, inputSchema).OutputSchema;

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new MappedDataView(input, new Mapper(this, input.Schema));
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ModelContextBridge.CheckAtModel(ctx);
        ModelContextBridge.SetVersionInfo(ctx, _writeAs);
        ModelContextBridge.SaveNonEmptyString(ctx, InputColumn);
        ModelContextBridge.SaveNonEmptyString(ctx, OutputColumn);
        ModelContextBridge.SaveBinaryStream(ctx, ConstantEntry, w => w.Write(Constant));
    }

    // The loader ML.NET finds through the woven LoadableClass: static, named Create, returns exactly this type;
    // ctx is ML.NET's internal ModelLoadContext. Must read exactly what Save wrote to Model.key.
    private static AddConstantTransformer Create(IHostEnvironment env, object ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ModelContextBridge.CheckAtModel(ctx, Format);
        var input = ModelContextBridge.LoadNonEmptyString(ctx);
        var output = ModelContextBridge.LoadNonEmptyString(ctx);
        var constant = float.NaN;
        ModelContextBridge.LoadBinaryStream(ctx, ConstantEntry, r => constant = r.ReadSingle());
        return new AddConstantTransformer(input, output, constant);
    }

    /// <summary>Output schema = every input column, then the output column (hiding an input column of that name).</summary>
    private sealed class Mapper : IRowToRowMapper
    {
        private readonly AddConstantTransformer _parent;
        private readonly DataViewSchema.Column _inputColumn;

        public Mapper(AddConstantTransformer parent, DataViewSchema inputSchema)
        {
            ArgumentNullException.ThrowIfNull(inputSchema);
            _parent = parent;
            InputSchema = inputSchema;
            var column = inputSchema.GetColumnOrNull(parent.InputColumn)
                ?? throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{parent.InputColumn}' not found.");
            if (column.Type != NumberDataViewType.Single)
                throw new ArgumentOutOfRangeException(nameof(inputSchema),
                    $"Schema mismatch for input column '{parent.InputColumn}': expected Single, got {column.Type}.");
            _inputColumn = column;

            var builder = new DataViewSchema.Builder();
            builder.AddColumns(inputSchema);
            builder.AddColumn(parent.OutputColumn, NumberDataViewType.Single);
            OutputSchema = builder.ToSchema();
        }

        public DataViewSchema InputSchema { get; }
        public DataViewSchema OutputSchema { get; }
        public int OutputIndex => InputSchema.Count;

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
            => dependingColumns.Select(c => c.Index == OutputIndex ? _inputColumn : InputSchema[c.Index]).Distinct();

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
            => new MappedRow(this, input, activeColumns.Any(c => c.Index == OutputIndex));

        public ValueGetter<TValue> MakeGetter<TValue>(DataViewRow input, DataViewSchema.Column column)
        {
            if (column.Index != OutputIndex)
                return input.GetGetter<TValue>(InputSchema[column.Index]);
            if (typeof(TValue) != typeof(float))
                throw new InvalidOperationException($"Column '{column.Name}' is Single; asked for {typeof(TValue).Name}.");
            var source = input.GetGetter<float>(_inputColumn);
            var constant = _parent.Constant;
            ValueGetter<float> getter = (ref float value) =>
            {
                source(ref value);
                value += constant;
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }
    }

    private sealed class MappedRow(Mapper mapper, DataViewRow input, bool outputActive) : DataViewRow
    {
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override DataViewSchema Schema => mapper.OutputSchema;
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index == mapper.OutputIndex ? outputActive : input.IsColumnActive(mapper.InputSchema[column.Index]);
        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => mapper.MakeGetter<TValue>(input, column);

        protected override void Dispose(bool disposing)
        {
            if (disposing) input.Dispose(); // the mapped row owns its input row, as ML.NET's own mappers do
            base.Dispose(disposing);
        }
    }

    private sealed class MappedCursor(Mapper mapper, DataViewRowCursor input, bool outputActive) : DataViewRowCursor
    {
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override DataViewSchema Schema => mapper.OutputSchema;
        public override bool MoveNext() => input.MoveNext();
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index == mapper.OutputIndex ? outputActive : input.IsColumnActive(mapper.InputSchema[column.Index]);
        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => mapper.MakeGetter<TValue>(input, column);

        protected override void Dispose(bool disposing)
        {
            if (disposing) input.Dispose();
            base.Dispose(disposing);
        }
    }

    private sealed class MappedDataView(IDataView input, Mapper mapper) : IDataView
    {
        public bool CanShuffle => input.CanShuffle;
        public DataViewSchema Schema => mapper.OutputSchema;
        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var needed = columnsNeeded.ToList();
            return new MappedCursor(mapper, input.GetRowCursor(mapper.GetDependencies(needed), rand), OutputNeeded(needed));
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        {
            var needed = columnsNeeded.ToList();
            return input.GetRowCursorSet(mapper.GetDependencies(needed), n, rand)
                .Select(c => (DataViewRowCursor)new MappedCursor(mapper, c, OutputNeeded(needed)))
                .ToArray();
        }

        private bool OutputNeeded(List<DataViewSchema.Column> needed) => needed.Any(c => c.Index == mapper.OutputIndex);
    }
}
