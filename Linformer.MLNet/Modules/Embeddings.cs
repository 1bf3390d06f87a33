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
        => 1.0f / pow(100000f, arange(0, width, 2, dtype: float32) / (float)width);

    /// <summary>Returns (1, n, W) for positions 0 … n−1.</summary>
    public override Tensor forward(long length)
    {
        using var scope = NewDisposeScope();
        var invFreq = InverseFrequencies();
        var positions = arange(length, dtype: float32);
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
        using var idx = arange(length, dtype: int64, device: weight_table.weight!.device);
        return weight_table.forward(idx).unsqueeze(0).MoveToOuterDisposeScope();
    }
}
