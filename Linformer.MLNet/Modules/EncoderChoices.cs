// Public vocabulary of the ML.NET face: the choices users set in LinformerEstimator.Options (and in
// LinformerEncoderOptions) live in the root namespace, so the ML.NET path needs one `using Linformer.MLNet;`. The
// file sits with the modules that implement them, so the folders keep depending one way (docs/architecture.md).
namespace Linformer.MLNet;

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
