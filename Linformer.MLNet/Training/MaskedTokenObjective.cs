using Linformer.MLNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// Masked-token prediction for token input: selected tokens are replaced by a random token 80% of the time and kept
/// otherwise (there is no reserved mask id), then predicted with the pre-training head; metric: accuracy on them.
/// </summary>
internal sealed class MaskedTokenObjective(double probability, Generator generator, int vocabulary) : MaskedObjective(probability, generator)
{
    public override string MetricName => "masked-token accuracy";

    public override Tensor Loss(LinformerNetwork network, LabelledBatch batch, Device device, out double metric)
    {
        var (input, mask) = batch.Rows.ToTensors(device);
        long b = input.shape[0], n = input.shape[1];
        var selected = SelectPositions(input, mask);
        using var replaced = 0.8.ToScalar();   // share of selected tokens replaced by a random token
        var replace = selected.logical_and(rand(new long[] { b, n }, generator: Generator).to(input.device).lt(replaced));
        var randomTokens = randint(0, vocabulary, new long[] { b, n }, generator: Generator, dtype: int64).to(input.device);
        var corrupted = where(replace, randomTokens, input);
        var logits = network.PretrainingHead(network.forward(corrupted, mask));                  // (B, n, V)
        var picked = logits[selected];                                                          // (S, V)
        var truth = input[selected];                                                            // (S)
        metric = picked.argmax(-1).eq(truth).to_type(float32).mean().item<float>();
        return nn.functional.cross_entropy(picked, truth);
    }
}
