using Linformer.MLNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// The self-supervised objectives: a random share of the real positions is selected (the paper's pre-training,
/// Section 5: 15%), corrupted, and predicted back from the rest. Every row predicts at least one position: its first
/// real one when the draw selected none.
/// </summary>
internal abstract class MaskedObjective(double probability, Generator generator) : TrainingObjective
{
    protected Generator Generator { get; } = generator;

    /// <summary>(B, n) boolean: the positions to corrupt and predict.</summary>
    protected internal Tensor SelectPositions(Tensor input, Tensor? mask)
    {
        long b = input.shape[0], n = input.shape[1];
        var real = mask ?? ones(b, n, dtype: @bool, device: input.device);
        var draw = rand(new long[] { b, n }, generator: Generator).to(input.device);
        using var p = probability.ToScalar();                                                   // explicit Scalar, alive until the call returns (docs/hardening.md)
        var selected = draw.lt(p).logical_and(real);                                            // (B, n)
        var none = selected.any(1).logical_not();                                               // (B)
        var firstReal = real.to_type(int64).argmax(1);                                          // (B)
        var fallback = nn.functional.one_hot(firstReal, n).to_type(@bool).logical_and(none.unsqueeze(-1));
        return selected.logical_or(fallback);
    }
}
