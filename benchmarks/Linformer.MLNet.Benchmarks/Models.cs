using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>The layer kinds compared.</summary>
internal enum ModelKind
{
    /// <summary>A one-layer <see cref="LinformerEncoder"/> (k projected positions).</summary>
    Linformer,
    /// <summary>The same encoder with <c>FullAttention = true</c>: fused scaled_dot_product_attention over all N positions.</summary>
    FullFused,
    /// <summary>TorchSharp's <c>nn.TransformerEncoderLayer</c> (libtorch's C++ module: explicit N×N attention matrix).</summary>
    TorchEncoderLayer,
}

/// <summary>One model of the comparison: its kind and, for Linformer, k and the sharing of E/F.</summary>
internal sealed record ModelSpec(ModelKind Kind, int ProjectedLength = 0, ParameterSharing Sharing = ParameterSharing.Layerwise)
{
    public string Id => Kind switch
    {
        ModelKind.Linformer => $"linformer-k{ProjectedLength}-{Sharing.ToString().ToLowerInvariant()}",
        ModelKind.FullFused => "full-fused",
        _ => "torch-encoder-layer",
    };

    public string Label => Kind switch
    {
        ModelKind.Linformer => $"Linformer k={ProjectedLength} ({Sharing.ToString().ToLowerInvariant()})",
        ModelKind.FullFused => "Full attention, fused SDPA (ours)",
        _ => "nn.TransformerEncoderLayer",
    };

    public bool IsFull => Kind != ModelKind.Linformer;

    /// <summary>The compared models for a profile: Linformer for every k with layerwise and no sharing, then the two full-attention baselines.</summary>
    public static IReadOnlyList<ModelSpec> All(RunProfile profile)
        => [.. profile.ProjectedLengths.SelectMany(k => new[] { new ModelSpec(ModelKind.Linformer, k, ParameterSharing.Layerwise), new ModelSpec(ModelKind.Linformer, k, ParameterSharing.None) }),
            new ModelSpec(ModelKind.FullFused), new ModelSpec(ModelKind.TorchEncoderLayer)];
}

/// <summary>A built model with a uniform (B, N, C) → (B, N, C) forward.</summary>
internal sealed class ModelUnderTest(nn.Module module, Func<Tensor, Tensor> forward) : IDisposable
{
    /// <summary>The Linformer encoder, when the model is one (the profile reads its layer's weights).</summary>
    public LinformerEncoder? Encoder => module as LinformerEncoder;

    /// <param name="x">(B, N, C)</param>
    /// <returns>(B, N, C)</returns>
    public Tensor Forward(Tensor x) => forward(x);

    public void Train(bool on)
    {
        if (on) module.train(); else module.eval();
    }

    /// <summary>Drops gradients (set to none, PyTorch's default), so every training step allocates them as a real one does.</summary>
    public void ZeroGrad() => module.zero_grad(true);

    /// <summary>
    /// Builds the model for sequence length <paramref name="n"/>. Dropout is 0 everywhere: inference ignores it,
    /// and in training any dropout &gt; 0 sends libtorch's attention to its unfused math path, which would
    /// measure the dropout implementation rather than the attention.
    /// </summary>
    public static ModelUnderTest Create(ModelSpec spec, int n, RunProfile profile, int seed = 17)
    {
        torch.manual_seed(seed);
        switch (spec.Kind)
        {
            case ModelKind.Linformer:
            case ModelKind.FullFused:
            {
                var options = new LinformerEncoderOptions
                {
                    SequenceLength = n, ModelWidth = profile.Channels, Heads = profile.Heads, FeedForwardSize = profile.FeedForward,
                    ProjectedLength = spec.Kind == ModelKind.Linformer ? spec.ProjectedLength : n, Sharing = spec.Sharing,
                    FullAttention = spec.Kind == ModelKind.FullFused, Depth = 1, Dropout = 0, FeedForwardDropout = 0,
                    Activation = Activation.Gelu, NormPlacement = NormPlacement.PostNorm,
                };
                var encoder = new LinformerEncoder(options);
                if (BenchDevice.IsCuda) encoder.to(BenchDevice.Device);
                return new ModelUnderTest(encoder, x => encoder.forward(x));
            }
            case ModelKind.TorchEncoderLayer:
            {
                // Same width, heads, FF size, activation and post-norm as the encoder above.
                var layer = nn.TransformerEncoderLayer(profile.Channels, profile.Heads, profile.FeedForward, dropout: 0.0,
                    activation: nn.Activations.GELU);
                if (BenchDevice.IsCuda) layer.to(BenchDevice.Device);
                // libtorch's C++ TransformerEncoderLayer is sequence-first, (N, B, C): transpose in and out, or it
                // would attend over the batch axis (and look impossibly fast).
                return new ModelUnderTest(layer, x => layer.forward(x.transpose(0, 1)).transpose(0, 1));
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind, "Unknown model kind.");
        }
    }

    public void Dispose() => module.Dispose();
}
