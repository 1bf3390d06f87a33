using Linformer.MLNet.Model;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>Mean squared error of the regression head on the mean-pooled encoding; metric: the same MSE.</summary>
internal sealed class RegressionObjective : TrainingObjective
{
    public override string MetricName => "MSE";

    public override Tensor Loss(LinformerNetwork network, LabelledBatch batch, Device device, out double metric)
    {
        var (input, mask) = batch.Rows.ToTensors(device);
        int b = batch.Count;
        var y = tensor(batch.RegressionTargets.AsSpan(0, b).ToArray(), new long[] { b }, float32).to(device);
        var prediction = network.Head(network.forward(input, mask), mask);                     // (B)
        var loss = nn.functional.mse_loss(prediction, y);
        metric = loss.item<float>();
        return loss;
    }
}
