using Linformer.MLNet.Model;
using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// The reserved token ids (docs/token-ids.md): a missing key reads as the unknown token, the input's own ids keep
/// their range check, models without reserved ids keep their error, and the masked-token objective uses the mask id
/// with BERT's 80/10/10 rule.
/// </summary>
[TestClass]
public sealed class SpecialTokenTests
{
    private const int N = 16, Keys = 10;

    public sealed class VarKeys { [KeyType(Keys)] public uint[] Tokens { get; set; } = []; }
    public sealed class FixedKeys { [KeyType(Keys), VectorType(N)] public uint[] Tokens { get; set; } = new uint[N]; }
    public sealed class VarInts { public int[] Tokens { get; set; } = []; }

    private static LinformerEstimator.Options Options(int sequenceLength = N) => new()
    {
        InputColumnName = "Tokens", OutputColumnName = "Features", SequenceLength = sequenceLength, ModelWidth = 8, ProjectedLength = 4,
        Heads = 2, Depth = 1, FeedForwardSize = 16, Epochs = 1, BatchSize = 4,
    };

    private static IEnumerable<VarKeys> Rows(int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
            yield return new VarKeys { Tokens = Enumerable.Range(0, random.Next(3, 20)).Select(_ => (uint)random.Next(1, Keys + 1)).ToArray() };
    }

    [TestMethod]
    public void AMissingKeyIsEncodedWithTheReservedUnknownTokenAndKeysKeepTheirIds()
    {
        var ml = new MLContext(seed: 2);
        using var model = ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(Rows(12, 1)));
        var layout = TokenLayout.Of(model.Spec);
        Assert.IsTrue(layout.SpecialTokens, "a Key column reserves the special tokens by default");
        Assert.AreEqual(Keys + 3, model.Spec.Encoder.VocabularySize, "V key values + padding, unknown, mask");
        Assert.AreEqual((Keys, Keys + 1, Keys + 2), (layout.PaddingId, layout.UnknownId, layout.MaskId));

        uint[] keys = [3, 1, 0, 7, 0, 10, 2];   // 0: a value the key map never saw
        var features = Tiny.Features(model, ml.Data.LoadFromEnumerable(new[] { new VarKeys { Tokens = keys } }));

        // The same row by hand: key k is id k-1, key 0 the unknown id, padded with the padding id and masked.
        var ids = keys.Select(k => k == 0 ? (long)layout.UnknownId!.Value : k - 1L).Concat(Enumerable.Repeat((long)layout.PaddingId!.Value, N - keys.Length)).ToArray();
        var mask = Enumerable.Range(0, N).Select(i => i < keys.Length).ToArray();
        float[] ByHand(long[] tokens)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var m = tensor(mask, new long[] { 1, N });
            return LinformerNetwork.Pool(model.Network.forward(tensor(tokens, new long[] { 1, N }), m), m, LinformerOutputKind.MeanPooled).data<float>().ToArray();
        }
        Tiny.AssertBitIdentical(new[] { ByHand(ids) }, features, "a row with missing keys vs the same ids by hand, key 0 as the unknown id");
        var asPadding = ids.Select(t => t == layout.UnknownId ? (long)layout.PaddingId.Value : t).ToArray();
        CollectionAssert.AreNotEqual(ByHand(asPadding), features[0], "the unknown token has its own embedding, not the padding's");
    }

    [TestMethod]
    public void WithoutReservedTokensAMissingKeyKeepsItsClearError()
    {
        var ml = new MLContext(seed: 2);
        var o = Options();
        o.ReserveSpecialTokens = false;
        var rows = new[] { new FixedKeys { Tokens = Enumerable.Range(0, N).Select(i => (uint)(1 + i % Keys)).ToArray() } };
        using var model = ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual(Keys, model.Spec.Encoder.VocabularySize);
        rows[0].Tokens[4] = 0;
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Tiny.Features(model, ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(ex.Message, "Input column 'Tokens' has a missing key at index 4 of row 0; this model reserves no unknown token");
    }

    [TestMethod]
    public void IntIdsOutsideTheInputVocabularyKeepTheirErrorEvenWhereReservedIdsFollow()
    {
        var ml = new MLContext(seed: 2);
        var o = Options();
        o.VocabularySize = Keys;
        using var model = ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(new[] { new VarInts { Tokens = [1, 2, 9] } }));
        Assert.IsTrue(model.Spec.SpecialTokens, "a variable-length column reserves the special tokens by default");
        foreach (int id in new[] { Keys, Keys + 1, Keys + 2, -1 })   // the reserved ids are not the input's to use
        {
            var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Tiny.Features(model, ml.Data.LoadFromEnumerable(new[] { new VarInts { Tokens = [1, id] } })));
            StringAssert.Contains(ex.Message, $"Input column 'Tokens' has token id {id} at index 1 of row 0, outside the vocabulary [0, {Keys})");
        }
    }

    public sealed class FixedInts { [VectorType(N)] public int[] Tokens { get; set; } = new int[N]; }
    public sealed class VarFloats { public float[] Tokens { get; set; } = [1, 2]; }

    [TestMethod]
    public void FixedIntColumnsKeepTheirEmbeddingAndTheInitialModelDecidesTheLayout()
    {
        var ml = new MLContext(seed: 2);
        var o = Options();
        o.VocabularySize = Keys;
        o.Epochs = 0;
        var ints = ml.Data.LoadFromEnumerable(new[] { new FixedInts() });
        using var plain = ml.Transforms.Linformer(o).Fit(ints);
        Assert.IsFalse(plain.Spec.SpecialTokens, "fixed-length Int32 ids are the user's own: nothing reserved by default");
        Assert.AreEqual(Keys, plain.Spec.Encoder.VocabularySize);

        // Fine-tuning takes the initial model's layout; asking for the other one is an error naming the option.
        using var reserved = ml.Transforms.Linformer(Options()).Fit(ml.Data.LoadFromEnumerable(Rows(4, 3)));
        var fine = Options();
        fine.InitialModel = reserved;
        fine.Epochs = 0;
        using (var tuned = ml.Transforms.Linformer(fine).Fit(ml.Data.LoadFromEnumerable(Rows(4, 4))))
            Assert.AreEqual((true, Keys + 3), (tuned.Spec.SpecialTokens, tuned.Spec.Encoder.VocabularySize));
        fine.ReserveSpecialTokens = false;
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(fine).Fit(ml.Data.LoadFromEnumerable(Rows(4, 4))));
        Assert.AreEqual("ReserveSpecialTokens", ex.ParamName);
        StringAssert.Contains(ex.Message, "ReserveSpecialTokens (False) differs from the initial model, which reserves padding, unknown and mask ids");

        var floats = Options();
        floats.ReserveSpecialTokens = true;
        ex = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(floats).Fit(ml.Data.LoadFromEnumerable(new[] { new VarFloats() })));
        Assert.AreEqual("ReserveSpecialTokens", ex.ParamName);
        StringAssert.Contains(ex.Message, "ReserveSpecialTokens applies to token input; column 'Tokens' holds floats");
    }

    /// <summary>
    /// The masked batch itself: unselected positions unchanged; of the selected ones about 80% the mask id, 10% a
    /// random id of the input's vocabulary, 10% unchanged; no other reserved id ever appears.
    /// </summary>
    [TestMethod]
    public void TheMaskedTokenObjectiveCorruptsWithTheMaskIdByBertsRule()
    {
        using var scope = NewDisposeScope();
        const int vocabulary = 50, b = 64, n = 256;
        var layout = new TokenLayout(vocabulary + 3, SpecialTokens: true);
        using var generator = new Generator(7);
        var objective = new MaskedTokenObjective(0.15, generator, layout);
        using var draws = new Generator(8);
        var input = randint(0, vocabulary, new long[] { b, n }, generator: draws, dtype: int64);
        var selected = rand(new long[] { b, n }, generator: draws).lt(0.5.ToScalar());
        var corrupted = objective.Corrupt(input, selected);

        var unselected = selected.logical_not();
        Assert.IsTrue(corrupted[unselected].eq(input[unselected]).all().item<bool>(), "unselected positions are never changed");
        var before = input[selected].data<long>().ToArray();
        var after = corrupted[selected].data<long>().ToArray();
        int total = before.Length, masked = after.Count(t => t == layout.MaskId), same = before.Zip(after).Count(p => p.First == p.Second);
        int randomised = total - masked - same;   // a random token equal to the original counts as "same" (1 in 50)
        Assert.IsTrue(after.All(t => t == layout.MaskId || (t >= 0 && t < vocabulary)), "only the mask id of the reserved ones appears");
        double maskShare = (double)masked / total, sameShare = (double)same / total, randomShare = (double)randomised / total;
        Assert.IsTrue(maskShare is > 0.78 and < 0.82, $"share replaced by the mask id: {maskShare:F4} of {total}");
        Assert.IsTrue(randomShare is > 0.085 and < 0.105, $"share replaced by another random token: {randomShare:F4}");
        Assert.IsTrue(sameShare is > 0.095 and < 0.115, $"share kept: {sameShare:F4}");

        // Without a reserved mask id the old rule stays: 80% random tokens, the rest kept, no id outside the vocabulary.
        var plain = new MaskedTokenObjective(0.15, generator, new TokenLayout(vocabulary, SpecialTokens: false)).Corrupt(input, selected);
        Assert.IsTrue(plain.lt(vocabulary.ToScalar()).all().item<bool>(), "no mask id without reserved tokens");
    }
}
