using Linformer.MLNet.Training;

namespace Linformer.MLNet;

public sealed partial class LinformerEstimator
{
    /// <summary>Defaults of <see cref="Options"/>, defined once and shared with the catalog overload.</summary>
    public static class Defaults
    {
        /// <summary>Projected length k.</summary>
        public const int ProjectedLength = 64;
        /// <summary>Model width C.</summary>
        public const int ModelWidth = 64;
        /// <summary>Heads.</summary>
        public const int Heads = 4;
        /// <summary>Layers.</summary>
        public const int Depth = 2;
        /// <summary>Feed-forward width.</summary>
        public const int FeedForwardSize = 256;
        /// <summary>Dropout of attention and of the feed-forward block.</summary>
        public const double Dropout = 0.1;
        /// <summary>Training epochs.</summary>
        public const int Epochs = 3;
        /// <summary>Rows per batch, in training and in Transform.</summary>
        public const int BatchSize = 16;
        /// <summary>Peak learning rate (AdamW).</summary>
        public const double LearningRate = 1e-3;
        /// <summary>Share of the steps spent warming the learning rate up linearly.</summary>
        public const double WarmupFraction = 0.1;
        /// <summary>AdamW weight decay.</summary>
        public const double WeightDecay = 0.01;
        /// <summary>Largest gradient norm before clipping.</summary>
        public const double GradientClipNorm = 1.0;
        /// <summary>Seed when the MLContext has none.</summary>
        public const int Seed = 1;
        /// <summary>Share of positions masked by the self-supervised objectives (the paper's 15%).</summary>
        public const double MaskingProbability = 0.15;
        /// <summary>Memory of the shuffle buffer when <see cref="Options.ShuffleBufferSize"/> is 0: as many rows as fit in 32 MiB.</summary>
        public const long ShuffleBufferBytes = 32L * 1024 * 1024;
    }

    /// <summary>Every setting of the Linformer transform: columns, encoder, output and training.</summary>
    public sealed class Options
    {
        // Columns

        /// <summary>Name of the output column (the encoding).</summary>
        public string OutputColumnName { get; set; } = "Features";
        /// <summary>
        /// Name of the input column: <c>Vector&lt;Single, N·channels&gt;</c> or <c>Vector&lt;Int32|Int64|Key&lt;UInt32&gt;, N&gt;</c>,
        /// or the same item types as a variable-length vector (then <see cref="SequenceLength"/> is required: shorter
        /// rows are padded and masked, longer ones cut by <see cref="Truncation"/>), or <c>Text</c> (tokenised by
        /// <see cref="Tokenizer"/>, then read as a variable-length token column). Null means <see cref="OutputColumnName"/>.
        /// </summary>
        public string? InputColumnName { get; set; }
        /// <summary>
        /// Optional <c>Vector&lt;Boolean, N&gt;</c> column (<c>VarVector&lt;Boolean&gt;</c> with as many values as the row
        /// has positions, beside a variable-length input); true marks a real position, false padding.
        /// </summary>
        public string? MaskColumnName { get; set; }
        /// <summary>Token id that marks padding when there is no mask column (token input only).</summary>
        public int? PaddingTokenId { get; set; }
        /// <summary>Label column: Key or Boolean → classification head (cross-entropy); Single → regression head (MSE); null → self-supervised training.</summary>
        public string? LabelColumnName { get; set; }
        /// <summary>
        /// If set, the supervised head's outputs are emitted as ML.NET's trainers emit them, so ML.NET's evaluators read
        /// them directly: this column is the score (Boolean label: <c>Single</c> log-odds; Key label: class
        /// probabilities <c>Vector&lt;Single, L&gt;</c>; Single label: the regression value), with
        /// <see cref="ProbabilityColumnName"/> and <see cref="PredictedLabelColumnName"/> beside it. Needs
        /// <see cref="LabelColumnName"/>. Usually <c>"Score"</c>.
        /// </summary>
        public string? ScoreColumnName { get; set; }
        /// <summary>The head's probability column, <c>Single</c> (Boolean label only), emitted with <see cref="ScoreColumnName"/>; null leaves it out.</summary>
        public string? ProbabilityColumnName { get; set; } = "Probability";
        /// <summary>
        /// The head's predicted-label column, emitted with <see cref="ScoreColumnName"/>: <c>Boolean</c> (Boolean label)
        /// or <c>Key&lt;UInt32, L&gt;</c> with the label's key values (Key label); none for a Single label; null leaves it out.
        /// </summary>
        public string? PredictedLabelColumnName { get; set; } = "PredictedLabel";

        // Shape of the input

        /// <summary>Sequence length N; 0 infers it from the column size (token input) or from <see cref="Channels"/>. Required for variable-length columns.</summary>
        public int SequenceLength { get; set; }
        /// <summary>Channels per position of float input; 0 infers from <see cref="SequenceLength"/> (or 1 when both are 0).</summary>
        public int Channels { get; set; }
        /// <summary>Vocabulary size of token input; 0 takes the key count of a Key column or the tokenizer's vocabulary of a Text column (required for Int32/Int64 columns).</summary>
        public int VocabularySize { get; set; }
        /// <summary>
        /// The tokenizer of a <c>Text</c> input column: each row's text becomes the tokenizer's ids, then is padded or
        /// cut to <see cref="SequenceLength"/> (required) as a variable-length token column is. Null takes
        /// <see cref="LinformerTokenizer.Gpt2"/> (or the <see cref="InitialModel"/>'s tokenizer). The vocabulary is the
        /// tokenizer's; its definition is saved in the model (docs/text-input.md). Only for Text columns.
        /// </summary>
        public LinformerTokenizer? Tokenizer { get; set; }
        /// <summary>Which positions a variable-length row longer than <see cref="SequenceLength"/> keeps (default: the first N).</summary>
        public LinformerTruncation Truncation { get; set; } = LinformerTruncation.KeepStart;
        /// <summary>
        /// What the transform does with a variable-length row longer than <see cref="SequenceLength"/>:
        /// <see cref="LinformerLongInputs.Truncate"/> (default) cuts it by <see cref="Truncation"/>;
        /// <see cref="LinformerLongInputs.Windows"/> encodes it whole as consecutive windows of N and averages them
        /// (docs/long-inputs.md). <c>Fit</c> trains on the rows cut by <see cref="Truncation"/> either way. Windows need a
        /// variable-length input and a pooled output (not <see cref="LinformerOutputKind.Sequence"/>); saved with the model (format 1.5).
        /// </summary>
        public LinformerLongInputs LongInputs { get; set; } = LinformerLongInputs.Truncate;
        /// <summary>
        /// Whether the token embedding reserves three ids after the input's vocabulary V: padding (V), unknown (V+1,
        /// what a missing key, Key value 0, reads as) and mask (V+2, used by the masked-token objective); see
        /// docs/token-ids.md. Null (default): reserved for Key columns and variable-length columns, not for fixed-length
        /// Int32/Int64 columns (whose ids and <see cref="VocabularySize"/> are the user's own, e.g. a PyTorch model's).
        /// </summary>
        public bool? ReserveSpecialTokens { get; set; }

        // Encoder

        /// <summary>Model width C (for float input with other channel counts a linear map brings positions to C).</summary>
        public int ModelWidth { get; set; } = Defaults.ModelWidth;
        /// <summary>Projected length k (the seed's <c>dim_k</c>).</summary>
        public int ProjectedLength { get; set; } = Defaults.ProjectedLength;
        /// <summary>Heads (<c>nhead</c>).</summary>
        public int Heads { get; set; } = Defaults.Heads;
        /// <summary>Layers (<c>depth</c>).</summary>
        public int Depth { get; set; } = Defaults.Depth;
        /// <summary>Feed-forward width (<c>dim_ff</c>).</summary>
        public int FeedForwardSize { get; set; } = Defaults.FeedForwardSize;
        /// <summary>Head width (<c>dim_d</c>); null = C / heads.</summary>
        public int? HeadWidth { get; set; }
        /// <summary>Attention dropout (<c>dropout</c>).</summary>
        public double Dropout { get; set; } = Defaults.Dropout;
        /// <summary>Feed-forward dropout (<c>dropout_ff</c>).</summary>
        public double FeedForwardDropout { get; set; } = Defaults.Dropout;
        /// <summary>Feed-forward activation.</summary>
        public Activation Activation { get; set; } = Activation.Gelu;
        /// <summary>Sharing of E and F (<c>parameter_sharing</c>).</summary>
        public ParameterSharing Sharing { get; set; } = ParameterSharing.Layerwise;
        /// <summary>How E and F project (<c>method</c>).</summary>
        public ProjectionMethod ProjectionMethod { get; set; } = ProjectionMethod.Learnable;
        /// <summary>k shrinks by this per layer (<c>k_reduce_by_layer</c>).</summary>
        public int ProjectedLengthReductionPerLayer { get; set; }
        /// <summary>Plain softmax attention instead of Linformer (<c>full_attention</c>), for comparison.</summary>
        public bool FullAttention { get; set; }
        /// <summary>Feed-forward blocks (<c>include_ff</c>).</summary>
        public bool IncludeFeedForward { get; set; } = true;
        /// <summary>Post-norm (the seed's) or pre-norm residual blocks.</summary>
        public NormPlacement NormPlacement { get; set; } = NormPlacement.PostNorm;
        /// <summary>
        /// Position embedding added to the input (after the input projection for float input); null = sinusoidal, for
        /// tokens and for floats, so that the encoder sees the order of the positions (attention itself ignores it).
        /// Models imported with <see cref="PyTorchWeightsPath"/> keep the seed's: sinusoidal for tokens, none for floats.
        /// </summary>
        public PositionEmbedding? PositionEmbedding { get; set; }

        // Output

        /// <summary>What the output column holds: the mean-pooled encoding (default), the first position, or the whole sequence.</summary>
        public LinformerOutputKind OutputKind { get; set; } = LinformerOutputKind.MeanPooled;
        /// <summary>
        /// Number format of the matrix products, in <c>Fit</c> (mixed precision: float32 weights and AdamW state,
        /// bfloat16 products forward and backward) and in the fitted transformer (<see cref="LinformerTransformer.Precision"/>).
        /// <see cref="LinformerPrecision.BFloat16"/> on a CPU without native bfloat16 runs float32 and logs a warning.
        /// </summary>
        public LinformerPrecision Precision { get; set; } = LinformerPrecision.Float32;

        // Training

        /// <summary>Training epochs; 0 = no training (featurise with the initial weights).</summary>
        public int Epochs { get; set; } = Defaults.Epochs;
        /// <summary>Rows per batch in training and in Transform.</summary>
        public int BatchSize { get; set; } = Defaults.BatchSize;
        /// <summary>
        /// Batches of <see cref="BatchSize"/> rows whose gradients are summed before one optimizer step (default 1), for an
        /// effective batch larger than memory allows: 4 × 8 rows make the same update as one batch of 32. Each batch's
        /// mean loss weighs its share of the step's rows. The learning-rate schedule, <see cref="CheckpointInterval"/> and
        /// <see cref="Progress"/> count optimizer steps; clipping applies to the summed gradient.
        /// </summary>
        public int GradientAccumulationSteps { get; set; } = 1;
        /// <summary>Peak learning rate of AdamW.</summary>
        public double LearningRate { get; set; } = Defaults.LearningRate;
        /// <summary>Share of steps for linear warm-up.</summary>
        public double WarmupFraction { get; set; } = Defaults.WarmupFraction;
        /// <summary>Decay after warm-up.</summary>
        public LearningRateDecay LearningRateDecay { get; set; } = LearningRateDecay.Linear;
        /// <summary>AdamW weight decay.</summary>
        public double WeightDecay { get; set; } = Defaults.WeightDecay;
        /// <summary>Gradient-norm clipping; 0 disables it.</summary>
        public double GradientClipNorm { get; set; } = Defaults.GradientClipNorm;
        /// <summary>Seed used when the MLContext was created without one.</summary>
        public int Seed { get; set; } = Defaults.Seed;
        /// <summary>
        /// Rows held in the shuffle buffer that draws each epoch's order. Fit reads the training rows from the cursor
        /// batch by batch (memory does not grow with the number of rows); each row it trains on is drawn at random from
        /// this buffer, which the cursor refills. A buffer as large as the training data gives a full shuffle; a smaller
        /// one shuffles locally (a row moves at most this many places earlier), so data sorted by label or source
        /// needs a buffer larger than its runs. 0 (default) = as many rows as fit in
        /// <see cref="Defaults.ShuffleBufferBytes"/> (e.g. 7281 rows of 512 tokens); 1 keeps the data's order.
        /// </summary>
        public int ShuffleBufferSize { get; set; }
        /// <summary>
        /// Joins the processes of a data-parallel run (<c>Linformer.MLNet.Distributed</c> provides one on MPI); null (the
        /// default) trains in this process alone. With it, each process reads only the rows whose position modulo the
        /// process count is its rank (of the training data and of <see cref="ValidationSet"/>), the gradients are
        /// averaged over the processes once per optimizer step, every process ends with the same weights, and only
        /// process 0 reports <see cref="Progress"/>. An optimizer step then covers up to
        /// <see cref="BatchSize"/> × <see cref="GradientAccumulationSteps"/> × process count rows. Checkpoints: process 0
        /// writes <see cref="CheckpointPath"/>, process r writes <c>CheckpointPath.rank</c>r (its place in the epoch and
        /// random generators), and a resume needs all of them.
        /// </summary>
        public IGradientReducer? GradientReducer { get; set; }
        /// <summary>Validation rows; if null and <see cref="ValidationFraction"/> &gt; 0 a share of the training rows is held out.</summary>
        public Microsoft.ML.IDataView? ValidationSet { get; set; }
        /// <summary>
        /// Share of training rows held out for validation when <see cref="ValidationSet"/> is null. Each row's side is
        /// drawn from a seeded hash of its position, so the split needs no second copy of the data and the held-out
        /// share is this fraction on average (not exactly).
        /// </summary>
        public double ValidationFraction { get; set; }
        /// <summary>Stop when validation loss has not improved for this many epochs (0 = never); the best epoch's weights are kept.</summary>
        public int EarlyStoppingPatience { get; set; }
        /// <summary>Share of positions masked by the self-supervised objectives.</summary>
        public double MaskingProbability { get; set; } = Defaults.MaskingProbability;
        /// <summary>Optional progress callback, called on the training thread after every optimizer step and at the end of each epoch (<see cref="LinformerTrainingProgress.IsEpochEnd"/>).</summary>
        public IProgress<LinformerTrainingProgress>? Progress { get; set; }
        /// <summary>
        /// Cancels training between batches (as <c>MLContext.CancelExecution</c> does): <c>Fit</c> then throws
        /// <see cref="OperationCanceledException"/>, returns no model and frees the partly trained network.
        /// </summary>
        public CancellationToken CancellationToken { get; set; }

        // Checkpoints

        /// <summary>
        /// File for training checkpoints (see <see cref="CheckpointInterval"/> and <see cref="ResumeFromCheckpoint"/>);
        /// its folder must exist. A checkpoint holds the whole training state: weights, AdamW moments, step, epoch,
        /// position in the epoch's shuffled order, the random generators of masking and dropout, and the best-so-far weights and early-stopping
        /// counters. It is replaced atomically (temporary file in the same folder, then a rename).
        /// </summary>
        public string? CheckpointPath { get; set; }
        /// <summary>Write a checkpoint to <see cref="CheckpointPath"/> after every this many optimizer steps; 0 (default) writes none.</summary>
        public int CheckpointInterval { get; set; }
        /// <summary>
        /// Continue from the checkpoint at <see cref="CheckpointPath"/> when that file exists (otherwise train from the
        /// start). With the same seed, data and options the result is bit-identical on CPU to an uninterrupted run. A
        /// checkpoint written for other data or options is rejected with a message naming what differs.
        /// </summary>
        public bool ResumeFromCheckpoint { get; set; }

        // Initial weights

        /// <summary>Start from this trained transformer's weights (e.g. a loaded model); its encoder settings are used.</summary>
        public LinformerTransformer? InitialModel { get; set; }
        /// <summary>Start from linformer-pytorch weights (safetensors state dict with the seed's names); the encoder settings must match the model that was saved.</summary>
        public string? PyTorchWeightsPath { get; set; }
    }
}
