using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>Masked-position reconstruction for float input: selected positions are zeroed, then reconstructed; loss and metric: MSE on them.</summary>
internal sealed class MaskedPositionObjective(double probability, Generator generator) : MaskedObjective(probability, generator)
{
    public override string MetricName => "masked-position MSE";

    public override Tensor Loss(LinformerNetwork network, LabelledBatch batch, Device device, out double metric)
    {
        var (input, mask) = batch.Rows.ToTensors(device);
        var selected = SelectPositions(input, mask);
        var corrupted = input.masked_fill(selected.unsqueeze(-1), Scalars.Zero);
        var reconstructed = network.PretrainingHead(network.forward(corrupted, mask));           // (B, n, I)
        var loss = nn.functional.mse_loss(reconstructed[selected], input[selected]);
        metric = loss.item<float>();
        return loss;
    }
}
