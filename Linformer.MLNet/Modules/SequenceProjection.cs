using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

// Shapes: B batch, N sequence length the projection was built for, n actual length (n <= N),
// K projected length (the paper's k), H heads, G projection groups (1 = shared by heads, H = one per head),
// D head width, F any feature width.

/// <summary>
/// A Linformer sequence projection (the paper's E or F, Section 4): maps n positions to k along the sequence
/// axis. Owns its parameters, their initialisation, its <see cref="ProjectionMethod"/>, and the slicing for
/// inputs shorter than <see cref="SequenceLength"/> (slicing ≡ zero padding, which equals the seed's masking).
/// Sharing is by instance: the same projection handed to several heads, to E and F, or to several layers.
/// With <see cref="Groups"/> = H it holds one independent projection per head, applied in one batched call.
/// </summary>
internal sealed class SequenceProjection : nn.Module
{
    // Learnable, Fixed: weight (G, K, N) [parameter or buffer], bias (G, K) [learnable only].
    // Convolution: weight (G·D, D, N/K), bias (G·D): a grouped Conv1d over each head's channels.
    private Tensor weight;  // not readonly: Module.to(device) replaces registered tensors through their fields
    private Tensor? bias;

    public ProjectionMethod Method { get; }
    public int SequenceLength { get; }
    public int ProjectedLength { get; }
    public int Groups { get; }
    public int HeadWidth { get; }

    /// <summary>True when the projection is a pure linear map along the sequence axis (it commutes with per-position linear maps).</summary>
    public bool IsSequenceLinear => Method != ProjectionMethod.Convolution;

    public SequenceProjection(string name, ProjectionMethod method, int sequenceLength, int projectedLength, int groups, int headWidth)
        : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sequenceLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(projectedLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(groups);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headWidth);
        if (projectedLength > sequenceLength)
            throw new ArgumentOutOfRangeException(nameof(projectedLength), projectedLength, $"dim_k ({projectedLength}) must not exceed the sequence length ({sequenceLength}).");
        Method = method;
        SequenceLength = sequenceLength;
        ProjectedLength = projectedLength;
        Groups = groups;
        HeadWidth = headWidth;

        using var noGrad = no_grad();
        switch (method)
        {
            case ProjectionMethod.Learnable:
            {
                // Xavier-normal per (K, N) matrix as the seed (and the paper's authors) recommend; PyTorch's
                // default uniform bias for nn.Linear(N, K).
                double std = Math.Sqrt(2.0 / (sequenceLength + projectedLength));
                using var scale = std.ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
                weight = nn.Parameter(randn(groups, projectedLength, sequenceLength).mul_(scale));
                double bound = 1.0 / Math.Sqrt(sequenceLength);
                bias = nn.Parameter(empty(groups, projectedLength).uniform_(-bound, bound));
                break;
            }
            case ProjectionMethod.Fixed:
            {
                // The seed's no_params: N(0, std = 1/k). A buffer, so it is saved and loaded (the seed loses it).
                using var scale = (1.0 / projectedLength).ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
                weight = randn(groups, projectedLength, sequenceLength).mul_(scale);
                bias = null;
                break;
            }
            case ProjectionMethod.Convolution:
            {
                if (sequenceLength % projectedLength != 0)
                    throw new ArgumentException(
                        $"The convolution projection needs the sequence length ({sequenceLength}) to be a multiple of dim_k ({projectedLength}): " +
                        "with kernel = stride = n / k it gives exactly k outputs only then.", nameof(projectedLength));
                int kernel = sequenceLength / projectedLength;
                // PyTorch's Conv1d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
                double bound = 1.0 / Math.Sqrt(headWidth * kernel);
                weight = nn.Parameter(empty(groups * headWidth, headWidth, kernel).uniform_(-bound, bound));
                bias = nn.Parameter(empty(groups * headWidth).uniform_(-bound, bound));
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown projection method.");
        }

        if (method == ProjectionMethod.Fixed)
            register_buffer("weight", weight, persistent: true);
        else
        {
            register_parameter("weight", (Parameter)weight);
            register_parameter("bias", (Parameter)bias!);
        }
    }

    /// <summary>The weight: (G, K, N) for sequence-linear methods, (G·D, D, N/K) for convolution.</summary>
    public Tensor Weight => weight;

    /// <summary>The bias: (G, K) for learnable, (G·D) for convolution, null for fixed.</summary>
    public Tensor? Bias => bias;

    /// <summary>
    /// Projects a sequence-linear input without the bias: x (B, n, F) with G = 1, or (B, H, n, F) → (…, K, F).
    /// Add <see cref="AddBias"/> after any per-position linear map that follows (the bias is per projected
    /// position, not per feature, so it does not commute with such maps).
    /// </summary>
    public Tensor ProjectLinear(Tensor x)
    {
        if (!IsSequenceLinear) throw new InvalidOperationException("The convolution projection is not a pure sequence-axis linear map.");
        long n = x.shape[^2];
        CheckLength(n);
        using var scope = NewDisposeScope();
        // (G, K, n): slicing the columns for a shorter input equals zero-padding it to N.
        var w = n == SequenceLength ? weight : weight.narrow(2, 0, n);
        Tensor result = Groups == 1
            ? Autocast.MatMul(w[0], x)                   // (K, n) @ (B, [H,] n, F) -> (B, [H,] K, F)
            : Autocast.MatMul(w, x);                     // (H, K, n) @ (B, H, n, F) -> (B, H, K, F)
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Adds the per-projected-position bias to y (…, K, F); returns y itself when there is no bias.</summary>
    public Tensor AddBias(Tensor y)
    {
        if (bias is null) return y;
        // (G, K) -> (K, 1) or (H, K, 1): broadcast over features (and over batch).
        var b = Groups == 1 ? bias[0].unsqueeze(-1) : bias.unsqueeze(-1);
        return y.add(Autocast.As(b, y));   // in y's type: a float32 bias must not promote bf16 keys back to float32
    }

    /// <summary>
    /// Projects per-head keys or values x (B, H, n, D) → (B, H, K, D), bias included. Used for convolution
    /// and for per-head projections; equal to <see cref="ProjectLinear"/> + <see cref="AddBias"/> where both apply.
    /// </summary>
    public Tensor Project(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (IsSequenceLinear) return AddBias(ProjectLinear(x)).MoveToOuterDisposeScope();

        long batch = x.shape[0], heads = x.shape[1], n = x.shape[2], d = x.shape[3];
        CheckLength(n);
        if (d != HeadWidth) throw new ArgumentException($"The convolution projection was built for head width {HeadWidth}; got {d}.", nameof(x));
        if (Groups != 1 && heads != Groups) throw new ArgumentException($"The projection holds {Groups} per-head convolutions; got {heads} heads.", nameof(x));
        // A shorter input is zero-padded to N: identical to padding + mask.
        if (n < SequenceLength) x = nn.functional.pad(x, new long[] { 0, 0, 0, SequenceLength - n });
        int stride = SequenceLength / ProjectedLength;
        Tensor y;
        if (Groups == 1)
        {
            var xt = x.reshape(batch * heads, SequenceLength, d).transpose(1, 2);            // (B·H, D, N)
            y = nn.functional.conv1d(xt, Autocast.As(weight, xt), Autocast.As(bias!, xt), stride: stride);                  // (B·H, D, K)
            y = y.reshape(batch, heads, d, ProjectedLength);                                  // (B, H, D, K)
        }
        else
        {
            var xt = x.permute(0, 1, 3, 2).reshape(batch, heads * d, SequenceLength);         // (B, H·D, N)
            y = nn.functional.conv1d(xt, Autocast.As(weight, xt), Autocast.As(bias!, xt), stride: stride, groups: heads);   // (B, H·D, K)
            y = y.reshape(batch, heads, d, ProjectedLength);                                  // (B, H, D, K)
        }
        return y.transpose(2, 3).MoveToOuterDisposeScope();                                   // (B, H, K, D)
    }

    private void CheckLength(long n)
    {
        if (n > SequenceLength || n <= 0)
            throw new ArgumentException($"The sequence projection was built for sequences of up to {SequenceLength} positions; got {n}.");
    }
}
