using Linformer.MLNet.Data;
using Linformer.MLNet.Interop;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Persistence;
using Linformer.MLNet.Training;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using System.Globalization;
using TorchSharp;
using static Linformer.MLNet.Interop.SchemaShapes;
using static TorchSharp.torch;

namespace Linformer.MLNet;

/// <summary>
/// Trains a Linformer encoder (Wang et al. 2020) on a sequence column and produces a <see cref="LinformerTransformer"/>
/// that encodes it. Create it with <c>mlContext.Transforms.Linformer(...)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// ### Input and output columns
/// | Column | Type | Meaning |
/// | -- | -- | -- |
/// | input | `Vector<Single, N·channels>` (read row-major as N × channels) or `Vector<Int32 \| Int64 \| Key<UInt32>, N>`; or the same item types of variable length, with `SequenceLength` (rows padded and masked, or cut by `Truncation`, or encoded as windows of N with `LongInputs = Windows`); or `Text`, with `SequenceLength`, tokenised by `Tokenizer` | the sequence |
/// | mask (optional) | `Vector<Boolean, N>` (`VarVector<Boolean>` beside a variable-length input) | true = real position; padded positions never influence real ones |
/// | label (optional) | `Key`, `Boolean` (classification) or `Single` (regression) | supervised training; without a label, self-supervised |
/// | output | `Vector<Single, C>` (pooled, default) or `Vector<Single, N·C>` (sequence) | the encoding |
/// | head (optional, `ScoreColumnName`) | Boolean label: `Score` (`Single`, log-odds), `Probability`, `PredictedLabel` (`Boolean`); Key label: `Score` (`Vector<Single, classes>`, probabilities), `PredictedLabel` (`Key<UInt32, classes>`); Single label: `Score` | the trained head's outputs, named and typed as ML.NET's trainers emit them |
///
/// Fit trains (AdamW, warm-up and decay, clipping) on CPU or, per `MLContext.GpuDeviceId`, on CUDA; the seed is
/// the `MLContext`'s when it has one. The fitted model saves and loads with `mlContext.Model.Save` / `Load`.
/// ]]></format>
/// </remarks>
public sealed partial class LinformerEstimator : IEstimator<LinformerTransformer>
{
    private readonly IHostEnvironment env;
    private readonly Options options;

    internal LinformerEstimator(IHostEnvironment env, Options options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        this.env = env;
        this.options = options;
        Validate(options);
    }

    private string InputColumn => options.InputColumnName ?? options.OutputColumnName;

    private static void Validate(Options o)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(o.OutputColumnName, nameof(Options.OutputColumnName));
        // The encoder's settings have their rules in one place; the sequence length is checked against the column at Fit.
        EncoderOptionsOf(o, o.SequenceLength, vocabulary: null, o.Channels > 0 ? o.Channels : o.ModelWidth).ValidateExceptSequenceLength();
        static void Positive(int v, string name) { if (v <= 0) throw new ArgumentOutOfRangeException(name, v, $"{name} ({v}) must be positive."); }
        static void NonNegative(double v, string name) { if (!(v >= 0)) throw new ArgumentOutOfRangeException(name, v, string.Create(CultureInfo.InvariantCulture, $"{name} ({v}) must be >= 0.")); }
        static void Fraction(double v, string name) { if (!(v >= 0 && v < 1)) throw new ArgumentOutOfRangeException(name, v, string.Create(CultureInfo.InvariantCulture, $"{name} ({v}) must be in [0, 1).")); }
        Positive(o.BatchSize, nameof(Options.BatchSize));
        Positive(o.GradientAccumulationSteps, nameof(Options.GradientAccumulationSteps));
        if (o.GradientReducer is { } r && !(r.ProcessCount >= 1 && r.Rank >= 0 && r.Rank < r.ProcessCount))
            throw new ArgumentOutOfRangeException(nameof(Options.GradientReducer), $"GradientReducer has rank {r.Rank} of {r.ProcessCount} processes; expected a process count >= 1 and a rank from 0 to the count - 1.");
        if (o.Epochs < 0) throw new ArgumentOutOfRangeException(nameof(Options.Epochs), o.Epochs, $"Epochs ({o.Epochs}) must be >= 0.");
        if (o.SequenceLength < 0) throw new ArgumentOutOfRangeException(nameof(Options.SequenceLength), o.SequenceLength, $"SequenceLength ({o.SequenceLength}) must be >= 0 (0 infers it).");
        if (o.Channels < 0) throw new ArgumentOutOfRangeException(nameof(Options.Channels), o.Channels, $"Channels ({o.Channels}) must be >= 0 (0 infers it).");
        if (o.VocabularySize < 0) throw new ArgumentOutOfRangeException(nameof(Options.VocabularySize), o.VocabularySize, $"VocabularySize ({o.VocabularySize}) must be >= 0 (0 takes the key count).");
        if (!(o.LearningRate > 0 && double.IsFinite(o.LearningRate))) throw new ArgumentOutOfRangeException(nameof(Options.LearningRate), o.LearningRate, string.Create(CultureInfo.InvariantCulture, $"LearningRate ({o.LearningRate}) must be positive."));
        Fraction(o.WarmupFraction, nameof(Options.WarmupFraction));
        Fraction(o.ValidationFraction, nameof(Options.ValidationFraction));
        NonNegative(o.WeightDecay, nameof(Options.WeightDecay));
        NonNegative(o.GradientClipNorm, nameof(Options.GradientClipNorm));
        if (!Enum.IsDefined(o.LongInputs)) throw new ArgumentOutOfRangeException(nameof(Options.LongInputs), o.LongInputs, $"LongInputs ({o.LongInputs}) is not one of Truncate, Windows.");
        if (o.LongInputs == LinformerLongInputs.Windows && o.OutputKind == LinformerOutputKind.Sequence)
            throw new ArgumentException("LongInputs (Windows) needs a pooled output: with OutputKind = Sequence the windows of one row have no single sequence to emit. Use MeanPooled or FirstPosition, or LongInputs = Truncate.", nameof(Options.LongInputs));
        if (!Enum.IsDefined(o.Precision)) throw new ArgumentOutOfRangeException(nameof(Options.Precision), o.Precision, $"Precision ({o.Precision}) is not one of Float32, BFloat16.");
        if (!(o.MaskingProbability > 0 && o.MaskingProbability < 1)) throw new ArgumentOutOfRangeException(nameof(Options.MaskingProbability), o.MaskingProbability, string.Create(CultureInfo.InvariantCulture, $"MaskingProbability ({o.MaskingProbability}) must be in (0, 1)."));
        if (o.ShuffleBufferSize < 0) throw new ArgumentOutOfRangeException(nameof(Options.ShuffleBufferSize), o.ShuffleBufferSize, $"ShuffleBufferSize ({o.ShuffleBufferSize}) must be >= 0 (0 sizes it to {Defaults.ShuffleBufferBytes / (1024 * 1024)} MiB).");
        if (o.EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(Options.EarlyStoppingPatience), o.EarlyStoppingPatience, $"EarlyStoppingPatience ({o.EarlyStoppingPatience}) must be >= 0.");
        if (o.InitialModel is not null && o.PyTorchWeightsPath is not null)
            throw new ArgumentException("Set InitialModel or PyTorchWeightsPath, not both.", nameof(Options.PyTorchWeightsPath));
        if (o.PyTorchWeightsPath is not null && !File.Exists(o.PyTorchWeightsPath))
            throw new FileNotFoundException($"PyTorchWeightsPath: file not found: '{o.PyTorchWeightsPath}'.", o.PyTorchWeightsPath);
        if (o.CheckpointInterval < 0) throw new ArgumentOutOfRangeException(nameof(Options.CheckpointInterval), o.CheckpointInterval, $"CheckpointInterval ({o.CheckpointInterval}) must be >= 0 (0 writes no checkpoints).");
        if ((o.CheckpointInterval > 0 || o.ResumeFromCheckpoint) && string.IsNullOrWhiteSpace(o.CheckpointPath))
            throw new ArgumentException($"{(o.ResumeFromCheckpoint ? "ResumeFromCheckpoint" : $"CheckpointInterval ({o.CheckpointInterval})")} needs CheckpointPath.", nameof(Options.CheckpointPath));
        if (!string.IsNullOrWhiteSpace(o.CheckpointPath) && Path.GetDirectoryName(Path.GetFullPath(o.CheckpointPath)) is { } folder && !Directory.Exists(folder))
            throw new DirectoryNotFoundException($"CheckpointPath: the folder '{folder}' of '{o.CheckpointPath}' does not exist.");
        if (o.ScoreColumnName is not null && o.LabelColumnName is null)
            throw new ArgumentException($"ScoreColumnName ('{o.ScoreColumnName}') needs the supervised head, which is trained on a label: set LabelColumnName to a Key, Boolean or Single column, or leave ScoreColumnName null.", nameof(Options.ScoreColumnName));
        if (o.ScoreColumnName is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(o.ScoreColumnName, nameof(Options.ScoreColumnName));
            var names = new (string Option, string? Name)[]
            {
                (nameof(Options.OutputColumnName), o.OutputColumnName), (nameof(Options.ScoreColumnName), o.ScoreColumnName),
                (nameof(Options.ProbabilityColumnName), o.ProbabilityColumnName), (nameof(Options.PredictedLabelColumnName), o.PredictedLabelColumnName),
            };
            foreach (var (option, name) in names.Skip(2))
                if (name is not null && string.IsNullOrWhiteSpace(name))
                    throw new ArgumentException($"{option} must be null (no such column) or a column name, got '{name}'.", option);
            for (int i = 1; i < names.Length; i++)
                for (int j = 0; j < i; j++)
                    if (names[i].Name is not null && names[i].Name == names[j].Name)
                        throw new ArgumentException($"{names[i].Option} ('{names[i].Name}') must differ from {names[j].Option}: one output column would hide the other.", names[i].Option);
        }
    }

    /// <summary>
    /// The one place where the flat encoder settings of <paramref name="o"/> become a <see cref="LinformerEncoderOptions"/>.
    /// The input column gives the rest: its sequence length, its vocabulary (token input; null for floats) and its
    /// channels, which are the model width of imported float models (the seed's encoder works at the input's width).
    /// New float models get a sinusoidal position embedding by default, so that attention sees the order; imported
    /// models keep the seed's (sinusoidal for tokens, none for floats).
    /// </summary>
    internal static LinformerEncoderOptions EncoderOptionsOf(Options o, int sequenceLength, int? vocabulary, int inputChannels)
    {
        bool tokens = vocabulary is not null, imported = o.PyTorchWeightsPath is not null;
        return new LinformerEncoderOptions
        {
            SequenceLength = sequenceLength,
            ModelWidth = tokens || !imported ? o.ModelWidth : inputChannels,
            ProjectedLength = o.ProjectedLength,
            FeedForwardSize = o.FeedForwardSize,
            HeadWidth = o.HeadWidth,
            FeedForwardDropout = o.FeedForwardDropout,
            Heads = o.Heads,
            Depth = o.Depth,
            Dropout = o.Dropout,
            Activation = o.Activation,
            Sharing = o.Sharing,
            ProjectedLengthReductionPerLayer = o.ProjectedLengthReductionPerLayer,
            ProjectionMethod = o.ProjectionMethod,
            FullAttention = o.FullAttention,
            IncludeFeedForward = o.IncludeFeedForward,
            NormPlacement = o.NormPlacement,
            VocabularySize = vocabulary,
            PositionEmbedding = o.PositionEmbedding ?? (tokens || imported ? null : PositionEmbedding.Sinusoidal),
        };
    }

    /// <summary>The schema <see cref="Fit"/>'s transformer will produce, checked against the input schema.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!TryFind(inputSchema, InputColumn, out var input))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{InputColumn}'.");
        bool text = input.Kind == SchemaShape.Column.VectorKind.Scalar && input.ItemType is TextDataViewType;
        if (input.Kind == SchemaShape.Column.VectorKind.Scalar && !text)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Schema mismatch for input column '{InputColumn}': expected Text or a vector (known size or variable) of Single, Int32, Int64 or Key<UInt32>, got a scalar of {input.ItemType}.");
        if (text && options.SequenceLength == 0 && options.InitialModel is null)
            throw new ArgumentException(
                $"SequenceLength must be set for the Text input column '{InputColumn}': it is the number of tokens N that shorter texts are padded to and longer texts cut to.",
                nameof(Options.SequenceLength));
        if (!text && options.Tokenizer is not null)
            throw new ArgumentException($"Tokenizer ({options.Tokenizer.Name}) applies to a Text input column; column '{InputColumn}' is {TypeText(input)}.", nameof(Options.Tokenizer));
        if (input.Kind == SchemaShape.Column.VectorKind.VariableVector && options.SequenceLength == 0 && options.InitialModel is null)
            throw new ArgumentException(
                $"SequenceLength must be set for the variable-length input column '{InputColumn}' of type {TypeText(input)}: it is the length N that shorter rows are padded to and longer rows cut to.",
                nameof(Options.SequenceLength));
        if (options.LongInputs != LinformerLongInputs.Truncate && input.Kind != SchemaShape.Column.VectorKind.VariableVector && !text)
            throw new ArgumentException(
                $"LongInputs ({options.LongInputs}) applies to variable-length input columns; column '{InputColumn}' has a fixed length ({TypeText(input)}), so no row is longer than the model's sequence length.",
                nameof(Options.LongInputs));
        if (options.MaskColumnName is not null && !TryFind(inputSchema, options.MaskColumnName, out _))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{options.MaskColumnName}'.");
        var added = new List<SchemaShape.Column>
        {
            NewColumn(options.OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, null),
        };
        if (options.LabelColumnName is not null)
        {
            if (!TryFind(inputSchema, options.LabelColumnName, out var label))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{options.LabelColumnName}'.");
            var kind = LabelKindOf(label.IsKey, label.ItemType, label.Kind == SchemaShape.Column.VectorKind.Scalar, TypeText(label), options.LabelColumnName);
            // Sizes are not part of a SchemaShape; the transformer's DataViewSchema carries them.
            if (options.ScoreColumnName is not null)
            {
                SchemaShape.Column? keyValues = label.Annotations is not null && TryFind(label.Annotations, AnnotationUtilsKinds.KeyValues, out var k) ? k : null;
                var head = new HeadColumns(kind, options.ScoreColumnName, options.ProbabilityColumnName, options.PredictedLabelColumnName, 0, null);
                foreach (var (name, value) in head.Columns())
                {
                    var annotations = new SchemaShape(HeadColumns.AnnotationShapesOf(kind, value, keyValues)
                        .Select(a => NewColumn(a.Name, a.Kind, a.ItemType, a.IsKey, null)));
                    added.Add(value switch
                    {
                        HeadValue.Score when kind == LabelKind.Key => NewColumn(name, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, annotations),
                        HeadValue.PredictedLabel when kind == LabelKind.Key => NewColumn(name, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, annotations),
                        HeadValue.PredictedLabel => NewColumn(name, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false, annotations),
                        _ => NewColumn(name, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, annotations),
                    });
                }
            }
        }
        var columns = inputSchema.Where(c => added.All(a => a.Name != c.Name)).Concat(added);
        return new SchemaShape(columns);
    }

    /// <summary>A column shape's type as ML.NET writes it in messages (<c>Key&lt;UInt32&gt;</c>, <c>Vector&lt;Single&gt;</c>).</summary>
    private static string TypeText(SchemaShape.Column column)
    {
        string text = column.ItemType.ToString() ?? "";
        if (column.IsKey) text = $"Key<{text}>";
        return column.Kind switch
        {
            SchemaShape.Column.VectorKind.Vector => $"Vector<{text}>",
            SchemaShape.Column.VectorKind.VariableVector => $"VarVector<{text}>",
            _ => text,
        };
    }

    /// <summary>The shape of a schema with its columns' annotations (ML.NET's own <c>SchemaShape.Create</c> is internal).</summary>
    internal static SchemaShape ShapeOf(DataViewSchema schema) => ShapeOf(schema, annotations: true);

    private static SchemaShape ShapeOf(DataViewSchema schema, bool annotations)
        => new(schema.Where(c => !c.IsHidden).Select(c =>
        {
            var item = c.Type is VectorDataViewType v ? v.ItemType : c.Type;
            var kind = c.Type is VectorDataViewType vt
                ? (vt.IsKnownSize ? SchemaShape.Column.VectorKind.Vector : SchemaShape.Column.VectorKind.VariableVector)
                : SchemaShape.Column.VectorKind.Scalar;
            // As in ML.NET's SchemaShape: a key column's item type is its raw type, with IsKey set.
            return NewColumn(c.Name, kind, item is KeyDataViewType key ? ColumnTypeOfRaw(key.RawType) : item, item is KeyDataViewType,
                annotations ? ShapeOf(c.Annotations.Schema, annotations: false) : null);
        }));

    private static DataViewType ColumnTypeOfRaw(Type raw)
        => raw == typeof(byte) ? NumberDataViewType.Byte : raw == typeof(ushort) ? NumberDataViewType.UInt16
         : raw == typeof(uint) ? NumberDataViewType.UInt32 : NumberDataViewType.UInt64;

    private static bool TryFind(SchemaShape schema, string name, out SchemaShape.Column column)
    {
        foreach (var c in schema)
            if (c.Name == name) { column = c; return true; }
        column = default;
        return false;
    }

    /// <summary>The label's kind (Key or Boolean: classification, Single: regression), or ML.NET's schema-mismatch error.</summary>
    private static LabelKind LabelKindOf(bool isKey, DataViewType itemType, bool scalar, string typeText, string column)
    {
        if (scalar && isKey) return LabelKind.Key;
        if (scalar && itemType is BooleanDataViewType) return LabelKind.Boolean;
        if (scalar && itemType == NumberDataViewType.Single) return LabelKind.Single;
        throw new ArgumentOutOfRangeException("inputSchema",
            $"Schema mismatch for label column '{column}': expected Key, Boolean (classification) or Single (regression), got {typeText}.");
    }

    /// <summary>Trains the encoder (unless <see cref="Options.Epochs"/> is 0) and returns the fitted transformer.</summary>
    public LinformerTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = options;
        var binding = InputBinding.Bind(input.Schema, InputColumn, o.MaskColumnName,
            o.SequenceLength > 0 ? o.SequenceLength : o.InitialModel?.Binding.SequenceLength ?? 0,
            o.Channels > 0 ? o.Channels : o.InitialModel?.Binding is { VariableLength: true } initial ? initial.Channels : 0, o.Truncation,
            TokenizerFor(input.Schema), o.LongInputs);
        int vocabulary = 0;
        bool specialTokens = false;
        if (binding.IsTokens)
        {
            vocabulary = o.VocabularySize > 0 ? o.VocabularySize : binding.KeyCount ?? binding.Tokenizer?.VocabularySize ?? 0;
            if (binding.Tokenizer is { } tokenizer && vocabulary != tokenizer.VocabularySize)
                throw new ArgumentException($"VocabularySize ({vocabulary}) differs from the {tokenizer.VocabularySize} ids of the tokenizer {tokenizer.Name} of the Text column '{binding.Column}'; leave it 0 to take the tokenizer's.", nameof(Options.VocabularySize));
            if (vocabulary <= 0)
                throw new ArgumentException($"VocabularySize must be set for the token column '{binding.Column}' of type {input.Schema[binding.Column].Type} (only Key columns carry their vocabulary).", nameof(Options.VocabularySize));
            if (binding.KeyCount is { } keys && keys > vocabulary)
                throw new ArgumentException($"VocabularySize ({vocabulary}) is smaller than the key count ({keys}) of column '{binding.Column}'.", nameof(Options.VocabularySize));
            if (o.PaddingTokenId is { } pad && (pad < 0 || pad >= vocabulary))
                throw new ArgumentOutOfRangeException(nameof(Options.PaddingTokenId), pad, $"PaddingTokenId ({pad}) must be inside the vocabulary [0, {vocabulary}).");
            specialTokens = SpecialTokensFor(binding);
            if (specialTokens) vocabulary = checked(vocabulary + TokenLayout.ReservedCount);
        }
        else if (o.ReserveSpecialTokens == true)
            throw new ArgumentException($"ReserveSpecialTokens applies to token input; column '{binding.Column}' holds floats ({input.Schema[binding.Column].Type}).", nameof(Options.ReserveSpecialTokens));

        HeadKind head = HeadKind.None;
        int classes = 0;
        HeadColumns? headColumns = null;
        if (o.LabelColumnName is not null)
        {
            var labelCol = InputBinding.Find(input.Schema, o.LabelColumnName);
            var itemType = labelCol.Type is VectorDataViewType v ? v.ItemType : labelCol.Type;
            var kind = LabelKindOf(itemType is KeyDataViewType, itemType, labelCol.Type is not VectorDataViewType, labelCol.Type.ToString() ?? "", o.LabelColumnName);
            head = kind == LabelKind.Single ? HeadKind.Regression : HeadKind.Classification;
            if (head == HeadKind.Classification)
                classes = labelCol.Type is KeyDataViewType k ? checked((int)k.Count) : 2;
            if (o.ScoreColumnName is not null)
                headColumns = new HeadColumns(kind, o.ScoreColumnName, o.ProbabilityColumnName, o.PredictedLabelColumnName,
                    kind == LabelKind.Key ? classes : 0, kind == LabelKind.Key ? LabelKeyValues.Read(labelCol) : null);
        }

        int seed = MLNetHost.Seed(env) ?? o.Seed;
        manual_seed(seed);
        var device = MLNetHost.Device(env);
        LinformerNetwork network;
        try { network = BuildNetwork(binding, vocabulary, specialTokens, head, classes, o.Epochs > 0 && head == HeadKind.None); }
        catch (Exception ex) when (AllocationFailure.Is(ex))
        {
            throw AllocationFailure.Wrap(ex, "Creating the network's weights", binding.SequenceLength, o.BatchSize, "CPU");
        }
        try
        {
            network.to(device);
            network.Precision = BFloat16Support.Resolve(o.Precision, device, message => MLNetHost.Warning(env, message));
            if (o.Epochs > 0) Train(input, binding, network, device, seed);
            network.eval();
            return new LinformerTransformer(env, network, device, new TransformerSettings(binding, o.OutputColumnName,
                null, o.OutputKind, network.Spec.Encoder.VocabularySize ?? 0, o.PaddingTokenId, o.BatchSize, headColumns));
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The tokenizer of a Text input column: the option's, else the initial model's, else GPT-2's; null for other
    /// columns (Bind refuses a tokenizer for them).
    /// </summary>
    private LinformerTokenizer? TokenizerFor(DataViewSchema schema)
    {
        var o = options;
        if (schema.GetColumnOrNull(InputColumn)?.Type is not TextDataViewType) return o.Tokenizer;
        var initial = o.InitialModel?.Binding.Tokenizer;
        if (o.Tokenizer is { } asked && initial is not null && asked.Identity != initial.Identity)
            throw new ArgumentException($"Tokenizer ({asked.Name}) differs from the initial model's ({initial.Name}); leave it null to take the initial model's.", nameof(Options.Tokenizer));
        return o.Tokenizer ?? initial ?? LinformerTokenizer.Gpt2();
    }

    /// <summary>
    /// Whether the token embedding reserves padding, unknown and mask ids (docs/token-ids.md): as the option says,
    /// else as the initial model has it, else for Key and variable-length columns; never for imported PyTorch weights
    /// unless asked.
    /// </summary>
    private bool SpecialTokensFor(InputBinding binding)
    {
        var o = options;
        if (o.InitialModel is { } initial)
        {
            bool has = initial.Spec.SpecialTokens;
            if (o.ReserveSpecialTokens is { } asked && asked != has)
                throw new ArgumentException($"ReserveSpecialTokens ({asked}) differs from the initial model, which {(has ? "reserves" : "reserves no")} padding, unknown and mask ids.", nameof(Options.ReserveSpecialTokens));
            return has;
        }
        if (o.PyTorchWeightsPath is not null) return o.ReserveSpecialTokens ?? false;
        return o.ReserveSpecialTokens ?? (binding.Kind == SequenceItemKind.Key || binding.VariableLength);
    }

    private LinformerNetwork BuildNetwork(InputBinding binding, int vocabulary, bool specialTokens, HeadKind head, int classes, bool pretraining)
    {
        var o = options;
        var encoderOptions = o.InitialModel?.Spec.Encoder
            ?? EncoderOptionsOf(o, binding.SequenceLength, binding.IsTokens ? vocabulary : null, binding.Channels);
        try { encoderOptions.Validate(); }
        catch (ArgumentException ex) { throw new ArgumentException($"The Linformer settings do not fit column '{binding.Column}' (N = {binding.SequenceLength}): {ex.Message}", ex.ParamName, ex); }
        if (encoderOptions.SequenceLength != binding.SequenceLength)
            throw new ArgumentException($"The initial model encodes sequences of {encoderOptions.SequenceLength} positions; column '{binding.Column}' has {binding.SequenceLength}.", nameof(Options.InitialModel));

        var spec = new NetworkSpec
        {
            Encoder = encoderOptions,
            InputChannels = binding.IsTokens ? 0 : binding.Channels,
            Head = head,
            Classes = classes,
            PretrainingHead = pretraining,
            SpecialTokens = specialTokens,
        };
        LinformerEncoder? encoder = null;
        if (o.PyTorchWeightsPath is not null) encoder = PyTorchImport.LoadEncoder(encoderOptions, o.PyTorchWeightsPath);
        var network = new LinformerNetwork(spec, encoder);
        if (o.InitialModel is not null) o.InitialModel.CopyWeightsInto(network);
        return network;
    }

    private void Train(IDataView input, InputBinding binding, LinformerNetwork network, Device device, int seed)
    {
        var o = options;
        // Rows are read from the cursor pass by pass, never all at once. The selection is the place for a
        // data-parallel shard (ShardIndex, ShardCount); the validation split is a seeded hash of the row position.
        var reducer = o.GradientReducer;   // a data-parallel process reads its share: row position mod process count
        var selection = reducer is null ? RowSelection.All : RowSelection.All with { ShardIndex = reducer.Rank, ShardCount = reducer.ProcessCount };
        TrainingRows Rows(IDataView data, RowSelection rows) => new DataViewRows(data, binding, TokenLayout.Of(network.Spec), o.PaddingTokenId, o.LabelColumnName, rows);
        TrainingRows train = Rows(input, selection);
        if (train.Count == 0 && reducer is { } r)
            throw new InvalidOperationException($"Process {r.Rank} of {r.ProcessCount} has no training rows (it reads the rows whose position modulo {r.ProcessCount} is {r.Rank}); give the data at least {r.ProcessCount} rows or use fewer processes.");
        TrainingRows? validation = null;
        if (o.ValidationSet is not null)
        {
            binding.CheckCompatible(o.ValidationSet.Schema);
            validation = Rows(o.ValidationSet, selection);
        }
        else if (o.ValidationFraction > 0)
        {
            var split = selection with { ValidationFraction = o.ValidationFraction, Seed = seed };
            (train, validation) = (Rows(input, split), Rows(input, split with { HeldOut = true }));
        }
        if (train.Count == 0 && (validation is null || o.ValidationSet is not null || validation.Count == 0))
            throw new InvalidOperationException($"The training data has no rows; Fit needs at least one row (or Epochs = 0).");
        if (o.ValidationSet is null && validation is not null && (train.Count == 0 || validation.Count == 0))
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"ValidationFraction ({o.ValidationFraction}) leaves {train.Count} training and {validation.Count} validation rows out of {train.Count + validation.Count}: each row's side is drawn from a hash of its position, so a small data set can leave one side empty; change the fraction, or pass ValidationSet."),
                nameof(Options.ValidationFraction));

        var settings = new TrainerSettings
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, WarmupFraction = o.WarmupFraction,
            LearningRateDecay = o.LearningRateDecay, WeightDecay = o.WeightDecay, GradientClipNorm = o.GradientClipNorm, Seed = seed,
            EarlyStoppingPatience = validation is null ? 0 : o.EarlyStoppingPatience, MaskingProbability = o.MaskingProbability,
            Precision = network.Precision,
            ShuffleBufferSize = o.ShuffleBufferSize > 0 ? o.ShuffleBufferSize
                : (int)Math.Clamp(Defaults.ShuffleBufferBytes / SequenceBatch.BytesPerRow(binding), 1, int.MaxValue),
            GradientAccumulationSteps = o.GradientAccumulationSteps, GradientReducer = o.GradientReducer,
            Progress = o.Progress, Log = message => MLNetHost.Info(env, message),
            CheckAlive = () => { MLNetHost.CheckAlive(env); o.CancellationToken.ThrowIfCancellationRequested(); },
            CheckpointPath = o.CheckpointPath is null ? null : Path.GetFullPath(o.CheckpointPath),
            CheckpointInterval = o.CheckpointInterval,
            Resume = o.ResumeFromCheckpoint,
        };
        LinformerTrainer.Train(network, device, train, validation, settings);
    }
}
