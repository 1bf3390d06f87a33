using System.Globalization;
namespace Linformer.MLNet.Modules;

/// <summary>How the key/value sequence projections E and F are shared (the paper's Section 4, "parameter sharing").</summary>
public enum ParameterSharing
{
    /// <summary>One E and one F per head in every layer (the seed's <c>"none"</c>).</summary>
    None,
    /// <summary>One E and one F per layer, shared by its heads (<c>"headwise"</c>).</summary>
    Headwise,
    /// <summary>One projection per layer used as both E and F (<c>"kv"</c>).</summary>
    KeyValue,
    /// <summary>One projection for every layer and head, used as both E and F (<c>"layerwise"</c>, the default).</summary>
    Layerwise,
}

/// <summary>How a sequence projection maps n positions to k.</summary>
public enum ProjectionMethod
{
    /// <summary>A learned linear map n → k with bias (the seed's <c>"learnable"</c>).</summary>
    Learnable,
    /// <summary>A 1-D convolution over each head's channels with kernel = stride = n / k (the seed's <c>"convolution"</c>); n must be a multiple of k.</summary>
    Convolution,
    /// <summary>A fixed random matrix drawn from N(0, (1/k)²) like the seed's <c>"no_params"</c>, stored as a buffer so it is saved with the model.</summary>
    Fixed,
}

/// <summary>The feed-forward activation.</summary>
public enum Activation
{
    /// <summary>Exact (erf) GELU.</summary>
    Gelu,
    /// <summary>ReLU.</summary>
    Relu,
}

/// <summary>Where the layer normalisation of a residual block sits.</summary>
public enum NormPlacement
{
    /// <summary><c>x = LayerNorm(x + f(x))</c>, as in the seed and the original Transformer.</summary>
    PostNorm,
    /// <summary><c>x = x + f(LayerNorm(x))</c> with a final LayerNorm after the last layer; easier to train deep.</summary>
    PreNorm,
}

/// <summary>The position embedding added to token embeddings.</summary>
public enum PositionEmbedding
{
    /// <summary>No position embedding (the seed's <c>Linformer</c> on float input).</summary>
    None,
    /// <summary>The seed's sinusoidal embedding: base 100000, sines in the first half, cosines in the second.</summary>
    Sinusoidal,
    /// <summary>A learned embedding of each position.</summary>
    Learned,
}

/// <summary>
/// The hyper-parameters of a <see cref="LinformerEncoder"/>: one validated record for the whole model.
/// Names follow .NET conventions; each member's documentation names the <c>linformer-pytorch</c> argument it
/// corresponds to. Defaults are those of <c>linformer-pytorch</c>'s <c>Linformer</c> class.
/// </summary>
public sealed record LinformerEncoderOptions
{
    /// <summary>Sequence length n (<c>input_size</c>). Inputs may be shorter; never longer.</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Model width (<c>channels</c>): features per position inside the encoder.</summary>
    public required int Channels { get; init; }

    /// <summary>Projected length k of keys and values (<c>dim_k</c>), 1 ≤ k ≤ n.</summary>
    public required int ProjectedLength { get; init; }

    /// <summary>Hidden width of the feed-forward block (<c>dim_ff</c>).</summary>
    public int FeedForwardSize { get; init; } = 256;

    /// <summary>Width of each head (<c>dim_d</c>); null means <see cref="Channels"/> / <see cref="Heads"/>.</summary>
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
    /// Token embedding width (<c>emb_dim</c>) when it differs from <see cref="Channels"/>: embeddings are then
    /// projected in to <see cref="Channels"/> and the output projected back. Only with <see cref="VocabularySize"/>.
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
        PositionEmbedding ?? (UsesTokens ? Modules.PositionEmbedding.Sinusoidal : Modules.PositionEmbedding.None);

    /// <summary>Width of the encoder's input features: the embedding width for tokens, else <see cref="Channels"/>.</summary>
    public int InputWidth => UsesTokens ? EffectiveEmbeddingSize : Channels;

    /// <summary>
    /// Always false. Linformer cannot be causal: E and F mix every position, future ones included, into each
    /// projected key and value, so any causal mask over the k projected columns still leaks the future
    /// (<c>linformer-pytorch</c>'s causal mode does). Setting it makes <see cref="Validate"/> throw.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>The width of one head: <see cref="HeadWidth"/> or <see cref="Channels"/> / <see cref="Heads"/>.</summary>
    public int EffectiveHeadWidth => HeadWidth ?? Channels / Math.Max(1, Heads);

    /// <summary>True when the encoder reads token ids.</summary>
    public bool UsesTokens => VocabularySize is not null;

    /// <summary>Token embedding width: <see cref="EmbeddingSize"/> or <see cref="Channels"/>.</summary>
    public int EffectiveEmbeddingSize => EmbeddingSize ?? Channels;

    /// <summary>Projected length of layer <paramref name="layer"/> (0-based).</summary>
    public int ProjectedLengthOfLayer(int layer) => Math.Max(1, ProjectedLength - layer * ProjectedLengthReductionPerLayer);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid setting, its rule and its value.</summary>
    public LinformerEncoderOptions Validate()
    {
        Positive(SequenceLength, "SequenceLength (input_size)");
        Positive(Channels, "Channels (channels)");
        Positive(Heads, "Heads (nhead)");
        Positive(Depth, "Depth (depth)");
        Positive(FeedForwardSize, "FeedForwardSize (dim_ff)");
        Probability(Dropout, "Dropout (dropout)");
        Probability(FeedForwardDropout, "FeedForwardDropout (dropout_ff)");
        if (Causal)
            throw new ArgumentException(
                "Causal (causal) = true is not supported: Linformer projects keys and values along the sequence axis, " +
                "so every projected column mixes all positions, future ones included, and no mask over the k columns " +
                "can stop position i from seeing positions after i (linformer-pytorch's causal mode leaks the future). " +
                "Use full attention or another causal architecture for autoregressive models.", nameof(Causal));
        if (HeadWidth is null && Channels % Heads != 0)
            throw new ArgumentException($"Channels (channels) ({Channels}) must be divisible by Heads (nhead) ({Heads}) unless HeadWidth (dim_d) is set.", nameof(Heads));
        if (HeadWidth is { } d) Positive(d, "HeadWidth (dim_d)");
        if (OutputIntermediateSize is { } w) Positive(w, "OutputIntermediateSize (w_o_intermediate_dim)");
        if (!Enum.IsDefined(Sharing)) throw new ArgumentException($"Sharing (parameter_sharing) ({Sharing}) is not one of none, headwise, kv, layerwise.", nameof(Sharing));
        if (!Enum.IsDefined(ProjectionMethod)) throw new ArgumentException($"ProjectionMethod (method) ({ProjectionMethod}) is not one of learnable, convolution, fixed.", nameof(ProjectionMethod));
        if (!Enum.IsDefined(Activation)) throw new ArgumentException($"Activation (activation) ({Activation}) is not one of gelu, relu.", nameof(Activation));
        if (!Enum.IsDefined(NormPlacement)) throw new ArgumentException($"NormPlacement ({NormPlacement}) is not defined.", nameof(NormPlacement));
        if (!Enum.IsDefined(EffectivePositionEmbedding)) throw new ArgumentException($"PositionEmbedding ({PositionEmbedding}) is not defined.", nameof(PositionEmbedding));
        if (ProjectedLengthReductionPerLayer < 0)
            throw new ArgumentOutOfRangeException(nameof(ProjectedLengthReductionPerLayer), ProjectedLengthReductionPerLayer, $"ProjectedLengthReductionPerLayer (k_reduce_by_layer) ({ProjectedLengthReductionPerLayer}) must be >= 0.");
        if (!FullAttention)
        {
            if (ProjectedLength <= 0)
                throw new ArgumentOutOfRangeException(nameof(ProjectedLength), ProjectedLength, $"ProjectedLength (dim_k) ({ProjectedLength}) must be positive.");
            if (ProjectedLength > SequenceLength)
                throw new ArgumentOutOfRangeException(nameof(ProjectedLength), ProjectedLength, $"ProjectedLength (dim_k) ({ProjectedLength}) must not exceed the sequence length (input_size) ({SequenceLength}).");
            if (Sharing == ParameterSharing.Layerwise && ProjectedLengthReductionPerLayer > 0 && Depth > 1)
                throw new ArgumentException(
                    $"ProjectedLengthReductionPerLayer (k_reduce_by_layer) ({ProjectedLengthReductionPerLayer}) needs Sharing other than layerwise: " +
                    "one projection shared by every layer has one k.", nameof(ProjectedLengthReductionPerLayer));
            if (ProjectionMethod == ProjectionMethod.Convolution)
                for (int layer = 0; layer < Depth; layer++)
                {
                    int k = ProjectedLengthOfLayer(layer);
                    if (SequenceLength % k != 0)
                        throw new ArgumentException(
                            $"ProjectionMethod convolution needs the sequence length (input_size) ({SequenceLength}) to be a multiple of the projected length " +
                            $"(dim_k) of every layer; layer {layer} has k = {k}. With kernel = stride = n / k the convolution gives exactly k outputs only then.",
                            nameof(ProjectedLength));
                }
        }
        if (VocabularySize is { } v) Positive(v, "VocabularySize (num_tokens)");
        if (EmbeddingSize is { } e)
        {
            Positive(e, "EmbeddingSize (emb_dim)");
            if (VocabularySize is null)
                throw new ArgumentException("EmbeddingSize (emb_dim) applies to token input only; set VocabularySize (num_tokens) too.", nameof(EmbeddingSize));
        }
        if (EffectivePositionEmbedding == Modules.PositionEmbedding.Sinusoidal && InputWidth % 2 != 0)
            throw new ArgumentException($"The sinusoidal position embedding needs an even input width; got {InputWidth}. Choose an even width, or set PositionEmbedding to Learned or None.", nameof(PositionEmbedding));
        return this;
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} ({value}) must be positive.");
    }

    private static void Probability(double value, string name)
    {
        if (!(value >= 0 && value < 1)) throw new ArgumentOutOfRangeException(name, value, string.Create(CultureInfo.InvariantCulture, $"{name} ({value}) must be in [0, 1)."));
    }
}
