using Linformer.MLNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// Masked-token prediction for token input: the selected tokens are corrupted, then predicted with the pre-training
/// head; metric: accuracy on them. With a reserved mask id (<see cref="TokenLayout.MaskId"/>) BERT's rule applies:
/// 80% of the selected tokens become the mask id, 10% a random token of the input's vocabulary, 10% stay. Without
/// one (models of format 1.3 and earlier fine-tuned further) 80% become a random token and 20% stay.
/// </summary>
internal sealed class MaskedTokenObjective(double probability, Generator generator, TokenLayout layout) : MaskedObjective(probability, generator)
{
    public override string MetricName => "masked-token accuracy";

    public override Tensor Loss(LinformerNetwork network, LabelledBatch batch, Device device, out double metric)
    {
        var (input, mask) = batch.Rows.ToTensors(device);
        var selected = SelectPositions(input, mask);
        var corrupted = Corrupt(input, selected);
        // The head maps to the whole vocabulary, so it runs on the selected positions only: at N = 512 with GPT-2's
        // 50,257 ids all positions' logits would be a (16, 512, 50257) float tensor per batch (1.6 GB, and as much again
        // for its gradient), for a loss that reads 15% of them.
        var encoded = network.forward(corrupted, mask);                                         // (B, n, C)
        var picked = network.PretrainingHead(encoded[selected]);                                // (S, V)
        var truth = input[selected];                                                            // (S)
        metric = picked.argmax(-1).eq(truth).to_type(float32).mean().item<float>();
        return nn.functional.cross_entropy(picked, truth);
    }

    /// <summary>The input with the <paramref name="selected"/> positions (B, n) corrupted as the class summary says.</summary>
    internal Tensor Corrupt(Tensor input, Tensor selected)
    {
        long b = input.shape[0], n = input.shape[1];
        var draw = rand(new long[] { b, n }, generator: Generator).to(input.device);
        using var replaced = 0.8.ToScalar();   // share of selected tokens replaced (by the mask id, or a random token without one)
        var randomTokens = randint(0, layout.InputVocabulary, new long[] { b, n }, generator: Generator, dtype: int64).to(input.device);
        if (layout.MaskId is not { } maskId)
            return where(selected.logical_and(draw.lt(replaced)), randomTokens, input);
        using var randomised = 0.9.ToScalar();   // the next 10%: a random token; the last 10% stay
        using var maskToken = ((long)maskId).ToScalar();
        var toMask = selected.logical_and(draw.lt(replaced));
        var toRandom = selected.logical_and(draw.ge(replaced)).logical_and(draw.lt(randomised));
        return where(toRandom, randomTokens, input).masked_fill(toMask, maskToken);
    }
}
