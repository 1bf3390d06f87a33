// Public vocabulary of the ML.NET face and the encoder API: it lives in the root namespace (one `using Linformer.MLNet;`),
// while the file sits with the modules that implement it, so the folders keep depending one way (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>
/// The number format of the encoder's matrix products. Weights, LayerNorm, softmax, pooling, heads, losses and
/// optimizer state stay in float32 either way, and outputs are float32.
/// </summary>
public enum LinformerPrecision
{
    /// <summary>Everything in float32 (the default).</summary>
    Float32,

    /// <summary>
    /// The matrix products (Q/K/V, E/F, attention, output and feed-forward maps) in bfloat16: about 2.5× faster on CPUs
    /// with native bfloat16 (AVX-512 BF16, AMX), results within about 1e-2 relative of float32. In training this is
    /// mixed precision: float32 master weights and AdamW state, bfloat16 forward and backward of the products.
    /// </summary>
    BFloat16,
}
