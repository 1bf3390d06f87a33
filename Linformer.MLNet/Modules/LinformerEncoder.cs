using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

// Shapes: B batch, N configured sequence length, n actual length (n <= N), C model width (channels),
// W embedding width (emb_dim), H heads, K projected length.

/// <summary>
/// The Linformer encoder (Wang et al. 2020): <see cref="LinformerEncoderOptions.Depth"/> layers of Linformer
/// self-attention and feed-forward blocks. Takes float sequences (B, n, C) or, when
/// <see cref="LinformerEncoderOptions.VocabularySize"/> is set, token ids (B, n) through a token embedding plus a
/// position embedding. Returns (B, n, C) (or (B, n, W) when token embeddings have their own width W).
/// Numerically equal to <c>linformer-pytorch</c> 0.19.3 for the same weights (its <c>Linformer</c>, and its
/// <c>LinformerLM</c> with <c>return_emb=True</c>).
/// </summary>
public sealed class LinformerEncoder : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Embedding? token_embedding;
    private readonly nn.Module<long, Tensor>? position_embedding;
    private readonly Linear? project_in;
    private readonly ModuleList<nn.Module> projections;   // every distinct E/F, registered once
    private readonly ModuleList<LinformerEncoderLayer> layers;
    private readonly LayerNorm? final_norm;
    private readonly Linear? project_out;

    /// <summary>The validated hyper-parameters this encoder was built from.</summary>
    public LinformerEncoderOptions Options { get; }

    /// <summary>Creates an encoder with freshly initialised weights (seed them with <c>torch.manual_seed</c>).</summary>
    /// <exception cref="ArgumentException">An option is out of range; the message names it.</exception>
    public LinformerEncoder(LinformerEncoderOptions options) : base("linformer")
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Validate();
        int c = options.ModelWidth, n = options.SequenceLength, h = options.Heads, d = options.EffectiveHeadWidth;

        if (options.UsesTokens)
        {
            token_embedding = nn.Embedding(options.VocabularySize!.Value, options.EffectiveEmbeddingSize);
            if (options.EffectiveEmbeddingSize != c)
            {
                project_in = nn.Linear(options.EffectiveEmbeddingSize, c);
                project_out = nn.Linear(c, options.EffectiveEmbeddingSize);
            }
        }
        position_embedding = options.EffectivePositionEmbedding switch
        {
            PositionEmbedding.Sinusoidal => new SinusoidalPositionEmbedding("position_embedding", options.InputWidth),
            PositionEmbedding.Learned => new LearnedPositionEmbedding("position_embedding", n, options.InputWidth),
            _ => null,
        };

        var distinct = new List<nn.Module>();
        SequenceProjection NewProjection(int k, int groups)
        {
            var p = new SequenceProjection("projection", options.ProjectionMethod, n, k, groups, d);
            distinct.Add(p);
            return p;
        }

        SequenceProjection? shared = null;
        var layerList = new List<LinformerEncoderLayer>();
        for (int i = 0; i < options.Depth; i++)
        {
            SequenceProjection? e = null, f = null;
            if (!options.FullAttention)
            {
                int k = options.ProjectedLengthOfLayer(i);
                switch (options.Sharing)
                {
                    case ParameterSharing.Layerwise:
                        e = f = shared ??= NewProjection(k, 1);
                        break;
                    case ParameterSharing.KeyValue:
                        e = f = NewProjection(k, 1);
                        break;
                    case ParameterSharing.Headwise:
                        e = NewProjection(k, 1);
                        f = NewProjection(k, 1);
                        break;
                    case ParameterSharing.None:
                        e = NewProjection(k, h);
                        f = NewProjection(k, h);
                        break;
                }
            }
            var attention = new LinformerSelfAttention("attention", c, h, d, options.Dropout, e, f,
                options.OutputIntermediateSize, registerProjections: false);
            var ff = options.IncludeFeedForward
                ? new FeedForward("feed_forward", c, options.FeedForwardSize, options.FeedForwardDropout, options.Activation)
                : null;
            layerList.Add(new LinformerEncoderLayer("layer", attention, ff, c, options.NormPlacement));
        }
        projections = new ModuleList<nn.Module>(distinct.ToArray());
        layers = new ModuleList<LinformerEncoderLayer>(layerList.ToArray());
        if (options.NormPlacement == NormPlacement.PreNorm) final_norm = nn.LayerNorm(c);
        RegisterComponents();
    }

    /// <summary>The encoder layers, in order.</summary>
    internal IReadOnlyList<LinformerEncoderLayer> Layers => layers.ToList();

    /// <summary>Every distinct sequence projection (E/F), in creation order; shared ones appear once.</summary>
    internal IReadOnlyList<SequenceProjection> Projections => projections.Cast<SequenceProjection>().ToList();

    internal Embedding? TokenEmbedding => token_embedding;
    internal Linear? ProjectIn => project_in;
    internal Linear? ProjectOut => project_out;
    internal LayerNorm? FinalNorm => final_norm;
    internal nn.Module<long, Tensor>? PositionEmbeddingModule => position_embedding;

    /// <summary>
    /// The number format of the matrix products in <see cref="forward(Tensor, Tensor?)"/> (default
    /// <see cref="LinformerPrecision.Float32"/>). With <see cref="LinformerPrecision.BFloat16"/> the Q/K/V, E/F,
    /// attention, output and feed-forward products run in bfloat16 while the weights, the residual stream, LayerNorm
    /// and the output stay float32; in training the gradients reach the float32 weights (mixed precision). The
    /// encoder does what is asked on any CPU: where the CPU has no native bfloat16, libtorch emulates it (slower
    /// than float32). The ML.NET transformer checks the CPU first (see <c>LinformerTransformer.Precision</c>).
    /// A run-time choice: it is not saved with the weights.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="LinformerPrecision"/>.</exception>
    public LinformerPrecision Precision
    {
        get => precision;
        set
        {
            if (!Enum.IsDefined(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, string.Create(CultureInfo.InvariantCulture, $"Precision ({value}) is not one of Float32, BFloat16."));
            precision = value;
        }
    }

    private LinformerPrecision precision;

    /// <summary>
    /// When true, each forward keeps every layer's attention probabilities for inspection
    /// (<see cref="GetAttentionMaps"/>); slower, off by default.
    /// </summary>
    public bool CaptureAttentionMaps
    {
        get => layers.Count > 0 && layers[0].Attention.CaptureAttention;
        set { foreach (var layer in layers) layer.Attention.CaptureAttention = value; }
    }

    /// <summary>
    /// The attention probabilities of the last forward with <see cref="CaptureAttentionMaps"/> on, one tensor
    /// per layer of shape (B, H, n, K) — K = n for full attention. The encoder owns them: they stay valid until
    /// the next forward or disposal. Empty when capture is off.
    /// </summary>
    public IReadOnlyList<Tensor> GetAttentionMaps()
        => layers.Select(l => l.Attention.LastAttention).Where(t => t is not null).Select(t => t!).ToList();

    /// <summary>Encodes a batch.</summary>
    /// <param name="input">Float (B, n, C) sequences, or int64/int32 token ids (B, n); n ≤ N.</param>
    /// <param name="keyPaddingMask">Optional boolean (B, n), true = real position. Padded positions never influence real ones.</param>
    /// <returns>(B, n, C) float32 (or (B, n, W) with a separate embedding width).</returns>
    /// <exception cref="ArgumentException">Wrong rank, length, width, dtype, mask shape, or a token id outside the vocabulary.</exception>
    public override Tensor forward(Tensor input, Tensor? keyPaddingMask)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input, keyPaddingMask);
        using var scope = NewDisposeScope();
        using var autocast = Autocast.Enter(precision);
        long n = input.shape[1];
        Tensor x;
        if (token_embedding is not null)
        {
            x = token_embedding.forward(input.dtype == int64 ? input : input.to_type(int64));   // (B, n, W)
        }
        else x = input;
        if (position_embedding is not null)
            x = x + position_embedding.forward(n).to(x.device);                                  // (B, n, W) + (1, n, W)
        if (project_in is not null) x = Autocast.Float32(Autocast.Linear(x, project_in));         // (B, n, C)
        foreach (var layer in layers) x = layer.forward(x, keyPaddingMask);
        if (final_norm is not null) x = final_norm.forward(x);
        if (project_out is not null) x = Autocast.Float32(Autocast.Linear(x, project_out));       // (B, n, W)
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Encodes without a mask.</summary>
    public Tensor forward(Tensor input) => forward(input, null);

    private void CheckInput(Tensor input, Tensor? mask)
    {
        var o = Options;
        if (o.UsesTokens)
        {
            if (input.dim() != 2)
                throw new ArgumentException($"Token input must have shape (batch, n) with n <= {o.SequenceLength}; got ({string.Join(", ", input.shape)}).", nameof(input));
            if (input.dtype != int64 && input.dtype != int32)
                throw new ArgumentException($"Token input must be int64 or int32 token ids; got {input.dtype}.", nameof(input));
            if (input.numel() > 0)
            {
                long min = input.min().item<long>(), max = input.max().item<long>();
                if (min < 0 || max >= o.VocabularySize!.Value)
                    throw new ArgumentOutOfRangeException(nameof(input),
                        string.Create(CultureInfo.InvariantCulture, $"Token ids must be in [0, num_tokens) = [0, {o.VocabularySize}); got ids from {min} to {max}."));
            }
        }
        else
        {
            if (input.dim() != 3)
                throw new ArgumentException($"Float input must have shape (batch, n, channels) = (B, <= {o.SequenceLength}, {o.ModelWidth}); got ({string.Join(", ", input.shape)}).", nameof(input));
            if (!input.is_floating_point())
                throw new ArgumentException($"Float input must be a floating-point tensor (float32); got {input.dtype}.", nameof(input));
            if (input.shape[2] != o.ModelWidth)
                throw new ArgumentException($"Input channels ({input.shape[2]}) must equal channels ({o.ModelWidth}).", nameof(input));
        }
        long n = input.shape[1];
        if (n <= 0 || n > o.SequenceLength)
            throw new ArgumentException($"Input length ({n}) must be between 1 and the sequence length (input_size) ({o.SequenceLength}).", nameof(input));
        if (mask is not null)
        {
            if (mask.dtype != ScalarType.Bool)
                throw new ArgumentException($"The key padding mask must be boolean (true = real position); got {mask.dtype}.", nameof(mask));
            if (mask.dim() != 2 || mask.shape[0] != input.shape[0] || mask.shape[1] != n)
                throw new ArgumentException($"The key padding mask must have shape ({input.shape[0]}, {n}); got ({string.Join(", ", mask.shape)}).", nameof(mask));
        }
    }

    /// <summary>Number of distinct trainable parameters (shared projections counted once).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());
}
