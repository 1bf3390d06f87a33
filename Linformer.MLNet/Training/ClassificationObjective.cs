using Linformer.MLNet.Model;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>Cross-entropy of the classification head on the mean-pooled encoding; metric: accuracy.</summary>
internal sealed class ClassificationObjective : TrainingObjective
{
    public override string MetricName => "accuracy";

    public override Tensor Loss(LinformerNetwork network, LabelledBatch batch, Device device, out double metric)
    {
        var (input, mask) = batch.Rows.ToTensors(device);
        int b = batch.Count;
        var y = tensor(batch.ClassLabels.AsSpan(0, b).ToArray(), new long[] { b }, int64).to(device);
        var logits = network.Head(network.forward(input, mask), mask);                         // (B, L)
        metric = logits.argmax(-1).eq(y).to_type(float32).mean().item<float>();
        return nn.functional.cross_entropy(logits, y);
    }
}
