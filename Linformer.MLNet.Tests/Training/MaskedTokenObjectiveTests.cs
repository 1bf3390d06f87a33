using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Training;

/// <summary>
/// The masked-token loss maps only the selected positions to the vocabulary (a vocabulary-wide map of every position
/// would be a (B, N, V) tensor per batch); it must equal the cross-entropy read from the logits of all positions.
/// </summary>
[TestClass]
public sealed class MaskedTokenObjectiveTests
{
    [TestMethod]
    public void TheLossEqualsCrossEntropyOverAllPositionsLogitsAtTheSelectedOnes()
    {
        using var scope = NewDisposeScope();
        const int n = 16, vocabulary = 40, rows = 4;
        manual_seed(3);
        var spec = new NetworkSpec
        {
            Encoder = new LinformerEncoderOptions
            {
                SequenceLength = n, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 1, FeedForwardSize = 16,
                VocabularySize = vocabulary + TokenLayout.ReservedCount, Dropout = 0, FeedForwardDropout = 0,
            },
            PretrainingHead = true, SpecialTokens = true,
        };
        using var network = new LinformerNetwork(spec);
        network.eval();
        var layout = TokenLayout.Of(spec);

        var batch = new LabelledBatch(new InputBinding("Tokens", SequenceItemKind.Int32, n, 0, null, null), rows);
        var random = new Random(4);
        for (int i = 0; i < rows * n; i++)
        {
            batch.Rows.Ids![i] = random.Next(vocabulary);
            batch.Rows.Mask[i] = i % n < n - 3 * (i / n);   // row r has 3·r padded positions at its end
        }
        batch.Rows.Count = rows;

        using var generator = new Generator(11);
        var loss = new MaskedTokenObjective(0.3, generator, layout).Loss(network, batch, CPU, out double accuracy).item<float>();

        // The same draws again (same generator seed), then the logits of every position.
        using var replay = new Generator(11);
        var reference = new MaskedTokenObjective(0.3, replay, layout);
        var (input, mask) = batch.Rows.ToTensors(CPU);
        var selected = reference.SelectPositions(input, mask);
        var logits = network.PretrainingHead(network.forward(reference.Corrupt(input, selected), mask));   // (B, n, V)
        var expected = nn.functional.cross_entropy(logits[selected], input[selected]).item<float>();
        double expectedAccuracy = logits[selected].argmax(-1).eq(input[selected]).to_type(float32).mean().item<float>();

        Assert.IsGreaterThan(rows, (int)selected.sum().item<long>(), "more than one selected position per row");
        Assert.AreEqual(expected, loss, 1e-5f, "masked-token loss");
        Assert.AreEqual(expectedAccuracy, accuracy, 1e-9, "masked-token accuracy");
    }
}
