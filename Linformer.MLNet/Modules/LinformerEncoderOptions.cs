using System.Globalization;
using System.Text.Json.Serialization;
namespace Linformer.MLNet.Modules;

/// <summary>
/// The hyper-parameters of a <see cref="LinformerEncoder"/>: one validated record for the whole model.
/// Names follow .NET conventions; each member's documentation names the <c>linformer-pytorch</c> argument it
/// corresponds to. Defaults are those of <c>linformer-pytorch</c>'s <c>Linformer</c> class. <see cref="Validate"/>
/// holds every rule on these settings; the ML.NET estimator maps its options onto this record and validates through it.
/// </summary>
public sealed record LinformerEncoderOptions
{
    /// <summary>Sequence length n (<c>input_size</c>). Inputs may be shorter; never longer.</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Model width C (the seed's <c>channels</c>): features per position inside the encoder.</summary>
    /// <remarks>Saved models store it under its former name <c>Channels</c>.</remarks>
    [JsonPropertyName("Channels")]
    public required int ModelWidth { get; init; }

    /// <summary>Projected length k of keys and values (<c>dim_k</c>), 1 ≤ k ≤ n.</summary>
    public required int ProjectedLength { get; init; }

    /// <summary>Hidden width of the feed-forward block (<c>dim_ff</c>).</summary>
    public int FeedForwardSize { get; init; } = 256;

    /// <summary>Width of each head (<c>dim_d</c>); null means <see cref="ModelWidth"/> / <see cref="Heads"/>.</summary>
    public int? HeadWidth { get; init; }

    /// <summary>Dropout in the feed-forward block (<c>dropout_ff</c>).</summary>
    public double FeedForwardDropout { get; init; } = 0.15;

    /// <summary>Number of heads (<c>nhead</c>).</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Number of layers (<c>depth</c>).</summary>
    public int Depth { get; init; } = 1;

    /// <summary>Dropout of the attention probabilities and of the attention output (<c>dropout</c>).</summary>
    public double Dropout { get; init; } = 0.1;

    /// <summary>Feed-forward activation (<c>activation</c>).</summary>
    public Activation Activation { get; init; } = Activation.Gelu;

    /// <summary>Sharing of E and F (<c>parameter_sharing</c>).</summary>
    public ParameterSharing Sharing { get; init; } = ParameterSharing.Layerwise;

    /// <summary>
    /// Layer i uses k − i·r projected positions, at least 1 (<c>k_reduce_by_layer</c>; the paper's
    /// "smaller k in higher layers"). Needs a sharing mode other than <see cref="ParameterSharing.Layerwise"/>,
    /// whose single projection has a single k.
    /// </summary>
    public int ProjectedLengthReductionPerLayer { get; init; }

    /// <summary>How E and F project the sequence (<c>method</c>).</summary>
    public ProjectionMethod ProjectionMethod { get; init; } = ProjectionMethod.Learnable;

    /// <summary>Plain softmax attention over all n positions instead of Linformer's k (<c>full_attention</c>), for comparison.</summary>
    public bool FullAttention { get; init; }

    /// <summary>Whether each layer has a feed-forward block (<c>include_ff</c>).</summary>
    public bool IncludeFeedForward { get; init; } = true;

    /// <summary>If set, the attention output map is two linear maps through this width (<c>w_o_intermediate_dim</c>).</summary>
    public int? OutputIntermediateSize { get; init; }

    /// <summary>Post-norm (the seed's) or pre-norm residual blocks.</summary>
    public NormPlacement NormPlacement { get; init; } = NormPlacement.PostNorm;

    /// <summary>Vocabulary size (<c>num_tokens</c>); when set the encoder takes token ids instead of float sequences.</summary>
    public int? VocabularySize { get; init; }

    /// <summary>
    /// Token embedding width (<c>emb_dim</c>) when it differs from <see cref="ModelWidth"/>: embeddings are then
    /// projected in to <see cref="ModelWidth"/> and the output projected back. Only with <see cref="VocabularySize"/>.
    /// </summary>
    public int? EmbeddingSize { get; init; }

    /// <summary>
    /// Position embedding added to the input; null means <see cref="PositionEmbedding.Sinusoidal"/> for token input
    /// and <see cref="PositionEmbedding.None"/> for float input (both as in the seed; the ML.NET estimator sets
    /// <see cref="PositionEmbedding.Sinusoidal"/> for new float models, so that attention sees the order).
    /// </summary>
    public PositionEmbedding? PositionEmbedding { get; init; }

    /// <summary>The position embedding in effect (see <see cref="PositionEmbedding"/>).</summary>
    public PositionEmbedding EffectivePositionEmbedding =>
        PositionEmbedding ?? (UsesTokens ? MLNet.PositionEmbedding.Sinusoidal : MLNet.PositionEmbedding.None);

    /// <summary>Width of the encoder's input features: the embedding width for tokens, else <see cref="ModelWidth"/>.</summary>
    public int InputWidth => UsesTokens ? EffectiveEmbeddingSize : ModelWidth;

    /// <summary>
    /// Always false. Linformer cannot be causal: E and F mix every position, future ones included, into each
    /// projected key and value, so any causal mask over the k projected columns still leaks the future
    /// (<c>linformer-pytorch</c>'s causal mode does). Setting it makes <see cref="Validate"/> throw.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>The width of one head: <see cref="HeadWidth"/> or <see cref="ModelWidth"/> / <see cref="Heads"/>.</summary>
    public int EffectiveHeadWidth => HeadWidth ?? ModelWidth / Math.Max(1, Heads);

    /// <summary>True when the encoder reads token ids.</summary>
    public bool UsesTokens => VocabularySize is not null;

    /// <summary>Token embedding width: <see cref="EmbeddingSize"/> or <see cref="ModelWidth"/>.</summary>
    public int EffectiveEmbeddingSize => EmbeddingSize ?? ModelWidth;

    /// <summary>Projected length of layer <paramref name="layer"/> (0-based).</summary>
    public int ProjectedLengthOfLayer(int layer) => Math.Max(1, ProjectedLength - layer * ProjectedLengthReductionPerLayer);

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming the first invalid setting, its rule, its value and the
    /// <c>linformer-pytorch</c> argument it corresponds to.
    /// </summary>
    public LinformerEncoderOptions Validate() => Check(sequenceLengthKnown: true);

    /// <summary>
    /// Every rule of <see cref="Validate"/> that does not need the sequence length: the ML.NET estimator checks its
    /// options when it is created, before it sees the input column that gives the sequence length.
    /// </summary>
    internal LinformerEncoderOptions ValidateExceptSequenceLength() => Check(sequenceLengthKnown: false);

    private LinformerEncoderOptions Check(bool sequenceLengthKnown)
    {
        if (sequenceLengthKnown) Positive(SequenceLength, nameof(SequenceLength));
        Positive(ModelWidth, nameof(ModelWidth));
        Positive(Heads, nameof(Heads));
        Positive(Depth, nameof(Depth));
        Positive(FeedForwardSize, nameof(FeedForwardSize));
        Probability(Dropout, nameof(Dropout));
        Probability(FeedForwardDropout, nameof(FeedForwardDropout));
        if (Causal)
            throw new ArgumentException(
                "Causal = true is not supported: Linformer projects keys and values along the sequence axis, " +
                "so every projected column mixes all positions, future ones included, and no mask over the k columns " +
                "can stop position i from seeing positions after i (linformer-pytorch's causal mode leaks the future). " +
                "Use full attention or another causal architecture for autoregressive models.", nameof(Causal));
        if (HeadWidth is null && ModelWidth % Heads != 0)
            throw new ArgumentException(
                $"ModelWidth ({ModelWidth}) must be divisible by Heads ({Heads}) unless HeadWidth is set" +
                $"{PyTorchArguments.Note(nameof(ModelWidth), nameof(Heads), nameof(HeadWidth))}.", nameof(Heads));
        if (HeadWidth is { } d) Positive(d, nameof(HeadWidth));
        if (OutputIntermediateSize is { } w) Positive(w, nameof(OutputIntermediateSize));
        Defined(Sharing, nameof(Sharing), PyTorchArguments.SharingValues);
        Defined(ProjectionMethod, nameof(ProjectionMethod), PyTorchArguments.MethodValues);
        Defined(Activation, nameof(Activation), PyTorchArguments.ActivationValues);
        if (!Enum.IsDefined(NormPlacement))
            throw new ArgumentException($"NormPlacement ({NormPlacement}) is not one of {string.Join(", ", Enum.GetNames<NormPlacement>())}.", nameof(NormPlacement));
        if (!Enum.IsDefined(EffectivePositionEmbedding))
            throw new ArgumentException($"PositionEmbedding ({PositionEmbedding}) is not one of {string.Join(", ", Enum.GetNames<PositionEmbedding>())}.", nameof(PositionEmbedding));
        if (ProjectedLengthReductionPerLayer < 0)
            throw new ArgumentOutOfRangeException(nameof(ProjectedLengthReductionPerLayer), ProjectedLengthReductionPerLayer,
                $"ProjectedLengthReductionPerLayer ({ProjectedLengthReductionPerLayer}) must be >= 0{PyTorchArguments.Note(nameof(ProjectedLengthReductionPerLayer))}.");
        if (!FullAttention)
        {
            if (ProjectedLength <= 0)
                throw new ArgumentOutOfRangeException(nameof(ProjectedLength), ProjectedLength,
                    $"ProjectedLength ({ProjectedLength}) must be positive{PyTorchArguments.Note(nameof(ProjectedLength))}.");
            if (sequenceLengthKnown && ProjectedLength > SequenceLength)
                throw new ArgumentOutOfRangeException(nameof(ProjectedLength), ProjectedLength,
                    $"ProjectedLength ({ProjectedLength}) must not exceed SequenceLength ({SequenceLength}){PyTorchArguments.Note(nameof(ProjectedLength), nameof(SequenceLength))}.");
            if (Sharing == ParameterSharing.Layerwise && ProjectedLengthReductionPerLayer > 0 && Depth > 1)
                throw new ArgumentException(
                    $"ProjectedLengthReductionPerLayer ({ProjectedLengthReductionPerLayer}) needs Sharing other than Layerwise: one projection shared by every layer has one k " +
                    $"(linformer-pytorch: {PyTorchArguments.Of(nameof(ProjectedLengthReductionPerLayer))}, " +
                    $"{PyTorchArguments.Of(nameof(Sharing))} = '{PyTorchArguments.ValueOf(PyTorchArguments.SharingValues, ParameterSharing.Layerwise)}').",
                    nameof(ProjectedLengthReductionPerLayer));
            if (sequenceLengthKnown && ProjectionMethod == ProjectionMethod.Convolution)
                for (int layer = 0; layer < Depth; layer++)
                {
                    int k = ProjectedLengthOfLayer(layer);
                    if (SequenceLength % k != 0)
                        throw new ArgumentException(
                            $"ProjectionMethod Convolution needs SequenceLength ({SequenceLength}) to be a multiple of the projected length of every layer; " +
                            $"layer {layer} has k = {k}. With kernel = stride = n / k the convolution gives exactly k outputs only then" +
                            $"{PyTorchArguments.Note(nameof(ProjectionMethod), nameof(SequenceLength), nameof(ProjectedLength))}.",
                            nameof(ProjectedLength));
                }
        }
        if (VocabularySize is { } v) Positive(v, nameof(VocabularySize));
        if (EmbeddingSize is { } e)
        {
            Positive(e, nameof(EmbeddingSize));
            if (VocabularySize is null)
                throw new ArgumentException(
                    $"EmbeddingSize ({e}) applies to token input only; set VocabularySize too{PyTorchArguments.Note(nameof(EmbeddingSize), nameof(VocabularySize))}.", nameof(EmbeddingSize));
        }
        if (EffectivePositionEmbedding == MLNet.PositionEmbedding.Sinusoidal && InputWidth % 2 != 0)
            throw new ArgumentException($"The sinusoidal position embedding needs an even input width; got {InputWidth}. Choose an even width, or set PositionEmbedding to Learned or None.", nameof(PositionEmbedding));
        return this;
    }

    private static void Positive(int value, string setting)
    {
        if (value <= 0) throw new ArgumentOutOfRangeException(setting, value, $"{setting} ({value}) must be positive{PyTorchArguments.Note(setting)}.");
    }

    private static void Probability(double value, string setting)
    {
        if (!(value >= 0 && value < 1))
            throw new ArgumentOutOfRangeException(setting, value, string.Create(CultureInfo.InvariantCulture, $"{setting} ({value}) must be in [0, 1){PyTorchArguments.Note(setting)}."));
    }

    private static void Defined<T>(T value, string setting, IReadOnlyList<(string Value, T Setting)> seedValues) where T : struct, Enum
    {
        if (!Enum.IsDefined(value))
            throw new ArgumentException(
                $"{setting} ({value}) is not one of {string.Join(", ", seedValues.Select(v => v.Setting))} " +
                $"(linformer-pytorch: {PyTorchArguments.Of(setting)} = {string.Join(", ", seedValues.Select(v => $"'{v.Value}'"))}).", setting);
    }
}
