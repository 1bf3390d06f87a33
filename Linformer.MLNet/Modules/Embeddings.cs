using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

/// <summary>
/// The seed's sinusoidal position embedding: for position p and i &lt; W/2, <c>sin(p·f_i)</c> in the first half and
/// <c>cos(p·f_i)</c> in the second, with <c>f_i = 100000^(−2i/W)</c> (base 100000 instead of the Transformer's 10000,
/// as linformer-pytorch chose for long sequences). No parameters.
/// </summary>
internal sealed class SinusoidalPositionEmbedding : nn.Module<long, Tensor>
{
    private readonly int width;

    public SinusoidalPositionEmbedding(string name, int width) : base(name)
    {
        if (width % 2 != 0) throw new ArgumentException($"The sinusoidal position embedding needs an even width; got {width}.", nameof(width));
        this.width = width;
    }

    /// <summary>Inverse frequencies (W/2), computed as the seed does in float32.</summary>
    public Tensor InverseFrequencies()
    {
        using var scope = NewDisposeScope();
        // Explicit Scalars, alive until the calls return (docs/hardening.md).
        using Scalar start = 0, stop = width, step = 2, w = (float)width;
        var exponents = arange(start, stop, step, dtype: float32).div_(w);                // 2i/W, (W/2)
        var frequencyBase = tensor(100000f);                                                // 0-dim, owned by the scope
        return pow(frequencyBase, exponents).reciprocal_().MoveToOuterDisposeScope();
    }

    /// <summary>Returns (1, n, W) for positions 0 … n−1.</summary>
    public override Tensor forward(long length)
    {
        using var scope = NewDisposeScope();
        var invFreq = InverseFrequencies();
        using Scalar stop = length;   // explicit Scalar, alive until the call returns (docs/hardening.md)
        var positions = arange(stop, dtype: float32);
        var angles = outer(positions, invFreq);                               // (n, W/2)
        return cat(new[] { angles.sin(), angles.cos() }, -1).unsqueeze(0).MoveToOuterDisposeScope();   // (1, n, W)
    }
}

/// <summary>A learned position embedding: one vector per position.</summary>
internal sealed class LearnedPositionEmbedding : nn.Module<long, Tensor>
{
    private readonly Embedding weight_table;

    public LearnedPositionEmbedding(string name, int length, int width) : base(name)
    {
        weight_table = nn.Embedding(length, width);
        using (no_grad()) weight_table.weight!.normal_(0, 0.02);
        RegisterComponents();
    }

    /// <summary>Returns (1, n, W).</summary>
    public override Tensor forward(long length)
    {
        using var scope = NewDisposeScope();
        using Scalar stop = length;   // explicit Scalar, alive until the call returns (docs/hardening.md)
        using var idx = arange(stop, dtype: int64, device: weight_table.weight!.device);
        return weight_table.forward(idx).unsqueeze(0).MoveToOuterDisposeScope();
    }
}
