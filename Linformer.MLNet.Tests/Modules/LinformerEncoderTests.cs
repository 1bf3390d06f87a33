using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

[TestClass]
public sealed class LinformerEncoderTests
{
    private static LinformerEncoderOptions Small(ParameterSharing sharing = ParameterSharing.Layerwise,
        ProjectionMethod method = ProjectionMethod.Learnable) => new()
    {
        SequenceLength = 32, ModelWidth = 16, ProjectedLength = 8, Heads = 2, Depth = 2, FeedForwardSize = 32,
        Sharing = sharing, ProjectionMethod = method, Dropout = 0.1, FeedForwardDropout = 0.1,
    };

    public static IEnumerable<object[]> AllSharingAndMethods()
    {
        foreach (var s in Enum.GetValues<ParameterSharing>())
            foreach (var m in Enum.GetValues<ProjectionMethod>())
                yield return new object[] { s, m };
    }

    /// <summary>Every sharing and method with Linformer attention (false), then full attention (true).</summary>
    public static IEnumerable<object[]> LinformerAndFullAttention()
    {
        foreach (var row in AllSharingAndMethods()) yield return [.. row, false];
        yield return [ParameterSharing.Layerwise, ProjectionMethod.Learnable, true];
    }

    [TestMethod]
    [DynamicData(nameof(LinformerAndFullAttention))]
    public void ChangingPaddedInputsChangesNoRealPosition(ParameterSharing sharing, ProjectionMethod method, bool fullAttention)
    {
        using var scope = NewDisposeScope();
        manual_seed(10);
        using var encoder = new LinformerEncoder(Small(sharing, method) with { FullAttention = fullAttention });
        encoder.eval();
        var x = randn(3, 32, 16);
        var mask = ones(3, 32, dtype: @bool);
        mask[0, TensorIndex.Slice(20, null)] = tensor(false);
        mask[2, TensorIndex.Slice(5, null)] = tensor(false);
        var changed = x.clone();
        changed.masked_scatter_(mask.logical_not().unsqueeze(-1).expand(3, 32, 16), randn(3, 32, 16) * 100);
        using var noGrad = no_grad();
        var a = encoder.forward(x, mask);
        var b = encoder.forward(changed, mask);
        var real = mask.unsqueeze(-1).expand_as(a);
        TensorAssert.Equal(a.masked_select(real), b.masked_select(real), $"{sharing}/{method}/full={fullAttention}: real positions after changing padding");

        // Padding more positions of a row must not change its real positions either (with full attention a padded key
        // that kept softmax weight would): row 2 keeps its 5 real positions, padded now to 32 instead of 20 positions.
        var alone = encoder.forward(x.narrow(0, 2, 1).narrow(1, 0, 20), mask.narrow(0, 2, 1).narrow(1, 0, 20));
        TensorAssert.Close(a.narrow(0, 2, 1).narrow(1, 0, 5), alone.narrow(1, 0, 5), Tolerances.ReorderedFloat32,
            $"{sharing}/{method}/full={fullAttention}: 5 real positions padded to 32 vs to 20");
    }

    [TestMethod]
    [DynamicData(nameof(LinformerAndFullAttention))]
    public void ShorterSequenceEqualsPaddingPlusMask(ParameterSharing sharing, ProjectionMethod method, bool fullAttention)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var encoder = new LinformerEncoder(Small(sharing, method) with { FullAttention = fullAttention });
        encoder.eval();
        const int n = 21;
        var x = randn(2, n, 16);
        var padded = cat(new[] { x, randn(2, 32 - n, 16) }, 1);
        var mask = ones(2, 32, dtype: @bool);
        mask[TensorIndex.Colon, TensorIndex.Slice(n, null)] = tensor(false);
        using var noGrad = no_grad();
        var sliced = encoder.forward(x, null);
        var masked = encoder.forward(padded, mask).narrow(1, 0, n);
        TensorAssert.Close(masked, sliced, Tolerances.ReorderedFloat32, $"{sharing}/{method}/full={fullAttention}: slicing E/F vs padding + mask");
        // The same through the written-out attention (attention maps captured).
        encoder.CaptureAttentionMaps = true;
        var writtenOut = encoder.forward(padded, mask).narrow(1, 0, n);
        TensorAssert.Close(masked, writtenOut, Tolerances.ReorderedFloat32, $"{sharing}/{method}/full={fullAttention}: written-out vs fused attention with a mask");
    }

    [TestMethod]
    public void FixedProjectionsSurviveSaveAndLoad()
    {
        using var scope = NewDisposeScope();
        var options = Small(ParameterSharing.None, ProjectionMethod.Fixed);
        manual_seed(12);
        using var first = new LinformerEncoder(options);
        manual_seed(99);
        using var second = new LinformerEncoder(options);
        first.eval(); second.eval();
        var x = randn(2, 32, 16);
        using var noGrad = no_grad();
        Assert.IsGreaterThan(1e-3, TensorAssert.MaxAbsDiff(first.forward(x), second.forward(x)), "different seeds give different fixed projections");
        var stream = new MemoryStream();
        first.save(new BinaryWriter(stream));
        stream.Position = 0;
        second.load(new BinaryReader(stream));
        TensorAssert.Equal(first.forward(x), second.forward(x), "outputs after loading the saved fixed projections");
        Assert.IsTrue(first.state_dict().Keys.Any(k => k.StartsWith("projections.", StringComparison.Ordinal)), "fixed projections are in the state dict");
    }

    [TestMethod]
    public void EvalModeIsDeterministicAndTrainModeUsesDropout()
    {
        using var scope = NewDisposeScope();
        manual_seed(13);
        using var encoder = new LinformerEncoder(Small() with { Dropout = 0.5, FeedForwardDropout = 0.5 });
        var x = randn(2, 32, 16);
        encoder.eval();
        using (no_grad()) TensorAssert.Equal(encoder.forward(x), encoder.forward(x), "two eval forwards");
        encoder.train();
        using (no_grad()) Assert.IsGreaterThan(1e-4, TensorAssert.MaxAbsDiff(encoder.forward(x), encoder.forward(x)), "train mode applies dropout");
    }

    [TestMethod]
    [DynamicData(nameof(AllSharingAndMethods))]
    public void GradientsReachEveryParameter(ParameterSharing sharing, ProjectionMethod method)
    {
        using var scope = NewDisposeScope();
        manual_seed(14);
        var options = Small(sharing, method) with { VocabularySize = 50, PositionEmbedding = PositionEmbedding.Learned, OutputIntermediateSize = 12 };
        using var encoder = new LinformerEncoder(options);
        encoder.train();
        var ids = randint(0, 50, new long[] { 2, 32 }, dtype: int64);
        var y = encoder.forward(ids);
        (y * randn_like(y)).sum().backward();
        foreach (var (name, p) in encoder.named_parameters())
        {
            Assert.IsNotNull(p.grad, $"{name} has no gradient");
            Assert.IsGreaterThan(0.0, p.grad.abs().sum().item<float>(), $"{name} has an all-zero gradient");
        }
        Assert.AreEqual(encoder.parameters().Count(), encoder.named_parameters().Select(p => p.name).Distinct().Count());
    }

    [TestMethod]
    public void SharingIsByInstance()
    {
        using var layerwise = new LinformerEncoder(Small(ParameterSharing.Layerwise) with { Depth = 3 });
        Assert.HasCount(1, layerwise.Projections);
        Assert.IsTrue(layerwise.Layers.All(l => ReferenceEquals(l.Attention.KeyProjection, layerwise.Projections[0]) && ReferenceEquals(l.Attention.ValueProjection, layerwise.Projections[0])));
        using var kv = new LinformerEncoder(Small(ParameterSharing.KeyValue) with { Depth = 3 });
        Assert.HasCount(3, kv.Projections);
        Assert.IsTrue(kv.Layers.All(l => ReferenceEquals(l.Attention.KeyProjection, l.Attention.ValueProjection)));
        using var headwise = new LinformerEncoder(Small(ParameterSharing.Headwise) with { Depth = 3 });
        Assert.HasCount(6, headwise.Projections);
        Assert.IsTrue(headwise.Projections.All(p => p.Groups == 1));
        using var none = new LinformerEncoder(Small(ParameterSharing.None) with { Depth = 3 });
        Assert.HasCount(6, none.Projections);
        Assert.IsTrue(none.Projections.All(p => p.Groups == 2));
    }

    [TestMethod]
    public void ProjectedLengthShrinksByLayerDownToOne()
    {
        using var encoder = new LinformerEncoder(Small(ParameterSharing.Headwise) with { Depth = 4, ProjectedLengthReductionPerLayer = 3 });
        CollectionAssert.AreEqual(new[] { 8, 5, 2, 1 }, encoder.Layers.Select(l => l.Attention.KeyProjection!.ProjectedLength).ToArray());
    }

    [TestMethod]
    public void AttentionMapsArePerLayerAndHeadOverKPositions()
    {
        using var scope = NewDisposeScope();
        using var encoder = new LinformerEncoder(Small(ParameterSharing.None) with { Depth = 2, ProjectedLengthReductionPerLayer = 2 });
        encoder.eval();
        Assert.IsEmpty(encoder.GetAttentionMaps());
        encoder.CaptureAttentionMaps = true;
        using (no_grad()) encoder.forward(randn(3, 32, 16));
        var maps = encoder.GetAttentionMaps();
        Assert.HasCount(2, maps);
        CollectionAssert.AreEqual(new long[] { 3, 2, 32, 8 }, maps[0].shape);
        CollectionAssert.AreEqual(new long[] { 3, 2, 32, 6 }, maps[1].shape);
    }

    [TestMethod]
    public void ManyForwardsLeaveNoLiveTensors()
    {
        using var encoder = new LinformerEncoder(Small(ParameterSharing.None));
        encoder.eval();
        using var x = randn(2, 32, 16);
        using var mask = ones(2, 32, dtype: @bool);
        void Run() { using (no_grad()) encoder.forward(x, mask).Dispose(); }
        Run();
        var stats = DisposeScopeManager.Statistics;
        stats.Reset();
        for (int i = 0; i < 200; i++) Run();
        Assert.AreEqual(0L, stats.ThreadTotalLiveCount, $"tensors left alive by 200 forwards: {stats}");
        Assert.AreEqual(stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount, stats.DisposedInScopeCount + stats.DisposedOutsideScopeCount,
            $"every tensor created is disposed: {stats}");
    }

    [TestMethod]
    public void BadArgumentsNameTheArgumentAndValues()
    {
        var baseOptions = Small();
        void Expect<T>(LinformerEncoderOptions o, params string[] fragments) where T : ArgumentException
        {
            var ex = Assert.Throws<T>(() => new LinformerEncoder(o));
            foreach (var f in fragments) StringAssert.Contains(ex.Message, f);
        }
        Expect<ArgumentException>(baseOptions with { ModelWidth = 10, Heads = 3 }, "ModelWidth (10)", "Heads (3)", "linformer-pytorch: channels, nhead");
        Expect<ArgumentOutOfRangeException>(baseOptions with { ProjectedLength = 0 }, "ProjectedLength (0)", "positive", "linformer-pytorch: dim_k");
        Expect<ArgumentOutOfRangeException>(baseOptions with { ProjectedLength = 33 }, "ProjectedLength (33)", "SequenceLength (32)", "linformer-pytorch: dim_k, input_size");
        Expect<ArgumentException>(baseOptions with { Sharing = (ParameterSharing)42 }, "parameter_sharing", "42");
        Expect<ArgumentException>(baseOptions with { ProjectionMethod = (ProjectionMethod)42 }, "method", "42");
        Expect<ArgumentException>(baseOptions with { Activation = (Activation)42 }, "activation", "42");
        Expect<ArgumentException>(baseOptions with { ProjectionMethod = ProjectionMethod.Convolution, ProjectedLength = 5 }, "multiple", "(32)", "k = 5");
        Expect<ArgumentException>(baseOptions with { ProjectedLengthReductionPerLayer = 2 }, "k_reduce_by_layer", "layerwise");
        Expect<ArgumentOutOfRangeException>(baseOptions with { Dropout = 1.5 }, "Dropout (1.5)", "linformer-pytorch: dropout");
        var causal = Assert.Throws<ArgumentException>(() => new LinformerEncoder(baseOptions with { Causal = true }));
        StringAssert.Contains(causal.Message, "future");
        Assert.AreEqual("Causal", causal.ParamName);
    }

    [TestMethod]
    public void BadInputsNameTheProblem()
    {
        using var scope = NewDisposeScope();
        using var floats = new LinformerEncoder(Small());
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => floats.forward(randn(2, 32))).Message, "(batch, n, channels)");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => floats.forward(randn(2, 32, 15))).Message, "channels (15) must equal channels (16)");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => floats.forward(randn(2, 33, 16))).Message, "Input length (33)");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => floats.forward(ones(2, 32, 16, dtype: int64))).Message, "floating-point");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => floats.forward(randn(2, 32, 16), ones(2, 31, dtype: @bool))).Message, "(2, 32)");
        using var tokens = new LinformerEncoder(Small() with { VocabularySize = 50 });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => tokens.forward(tensor(new long[] { 1, 2, 50 }).unsqueeze(0)));
        StringAssert.Contains(ex.Message, "[0, 50)");
        StringAssert.Contains(ex.Message, "to 50");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => tokens.forward(randn(1, 3))).Message, "int64 or int32");
    }

    [TestMethod]
    public void FullAttentionOptionUsesEveryPosition()
    {
        using var scope = NewDisposeScope();
        using var encoder = new LinformerEncoder(Small() with { FullAttention = true });
        Assert.IsEmpty(encoder.Projections);
        encoder.eval();
        encoder.CaptureAttentionMaps = true;
        using (no_grad()) encoder.forward(randn(1, 32, 16));
        CollectionAssert.AreEqual(new long[] { 1, 2, 32, 32 }, encoder.GetAttentionMaps()[0].shape);
    }

    [TestMethod]
    public void FullAttentionGivesPaddedKeysNoWeight()
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        using var encoder = new LinformerEncoder(Small() with { FullAttention = true });
        encoder.eval();
        encoder.CaptureAttentionMaps = true;
        var mask = ones(3, 32, dtype: @bool);
        mask[0, TensorIndex.Slice(9, null)] = tensor(false);
        mask[1] = tensor(false);                                                   // a row with no real position
        using (no_grad())
        {
            var y = encoder.forward(randn(3, 32, 16), mask);
            Assert.IsFalse(y.isnan().any().item<bool>(), "a row without real positions gave NaN");
        }
        foreach (var map in encoder.GetAttentionMaps())                             // (B, H, n, n)
        {
            Assert.AreEqual(0f, map[0, TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(9, null)].abs().max().item<float>(), "weight on padded keys");
            TensorAssert.Close(ones(2, 32), map[0].sum(-1), 1e-5, "rows sum to 1 over the 9 real keys");
            TensorAssert.Close(ones(2, 32), map[1].sum(-1), 1e-5, "a row without real positions attends over every key");
        }
    }
}
