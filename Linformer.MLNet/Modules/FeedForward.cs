using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

/// <summary>Position-wise feed-forward block: <c>w_2(dropout(act(w_1 x)))</c> then dropout, as in the seed.</summary>
internal sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Linear w_1;
    private readonly nn.Module<Tensor, Tensor> activation;
    private readonly nn.Module<Tensor, Tensor> dropout;
    private readonly Linear w_2;
    private readonly nn.Module<Tensor, Tensor> dropout2;

    public FeedForward(string name, int channels, int hiddenSize, double dropout, Activation activation) : base(name)
    {
        w_1 = nn.Linear(channels, hiddenSize);
        this.activation = activation switch
        {
            Activation.Gelu => nn.GELU(),   // exact erf form, as torch.nn.functional.gelu's default
            Activation.Relu => nn.ReLU(),
            _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "activation must be gelu or relu."),
        };
        this.dropout = nn.Dropout(dropout);
        w_2 = nn.Linear(hiddenSize, channels);
        dropout2 = nn.Dropout(dropout);
        RegisterComponents();
    }

    public Linear W1 => w_1;
    public Linear W2 => w_2;

    /// <param name="x">(B, n, C)</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // In a bf16 scope both maps run in bf16, and so does the activation in between (libtorch's CPU GELU/ReLU
        // kernels compute bf16 in float32 and round once); the caller takes the result back to float32.
        var h = dropout.forward(activation.forward(Autocast.Linear(x, w_1)));   // (B, n, dim_ff)
        return dropout2.forward(Autocast.Linear(h, w_2)).MoveToOuterDisposeScope();
    }
}

/// <summary>One encoder layer: Linformer self-attention and (optionally) feed-forward, each in a residual block.</summary>
internal sealed class LinformerEncoderLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly LinformerSelfAttention attention;
    private readonly LayerNorm attention_norm;
    private readonly FeedForward? feed_forward;
    private readonly LayerNorm? feed_forward_norm;
    private readonly NormPlacement placement;

    public LinformerEncoderLayer(string name, LinformerSelfAttention attention, FeedForward? feedForward, int channels, NormPlacement placement)
        : base(name)
    {
        this.attention = attention;
        attention_norm = nn.LayerNorm(channels);
        feed_forward = feedForward;
        feed_forward_norm = feedForward is null ? null : nn.LayerNorm(channels);
        this.placement = placement;
        RegisterComponents();
    }

    public LinformerSelfAttention Attention => attention;
    public LayerNorm AttentionNorm => attention_norm;
    public FeedForward? FeedForwardBlock => feed_forward;
    public LayerNorm? FeedForwardNorm => feed_forward_norm;

    /// <param name="x">(B, n, C)</param>
    /// <param name="keyPaddingMask">(B, n), true = real position, or null.</param>
    public override Tensor forward(Tensor x, Tensor? keyPaddingMask)
    {
        using var scope = NewDisposeScope();
        x = Residual(x, t => attention.forward(t, keyPaddingMask), attention_norm);
        if (feed_forward is not null) x = Residual(x, feed_forward.forward, feed_forward_norm!);
        return x.MoveToOuterDisposeScope();
    }

    // The residual stream and LayerNorm stay float32 under bf16: each block's result is taken back to float32.
    private Tensor Residual(Tensor x, Func<Tensor, Tensor> block, nn.Module<Tensor, Tensor> norm)
        => placement == NormPlacement.PostNorm
            ? norm.forward(x + Autocast.Float32(block(x)))      // the seed: x = LayerNorm(x + f(x))
            : x + Autocast.Float32(block(norm.forward(x)));     // pre-norm: x = x + f(LayerNorm(x))
}
