using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

[TestClass]
public sealed class LinformerAttentionTests
{
    /// <summary>The plain reference twin: per head, softmax(Q Kᵀ/√d) V written out, Q/K/V from the module's weights.</summary>
    private static Tensor ReferenceAttention(LinformerSelfAttention attention, Tensor x, int heads, int d,
        Func<int, Tensor, Tensor>? projectKey, Func<int, Tensor, Tensor>? projectValue, Tensor? mask)
    {
        var w = attention.Qkv.weight!;
        long hd = heads * d;
        var outputs = new List<Tensor>();
        for (int h = 0; h < heads; h++)
        {
            var q = matmul(x, w.narrow(0, h * d, d).t());                 // (B, n, D)
            var k = matmul(x, w.narrow(0, hd + h * d, d).t());
            var v = matmul(x, w.narrow(0, 2 * hd + h * d, d).t());
            if (mask is not null)
            {
                var keep = mask.unsqueeze(-1).to_type(float32);
                k = k * keep;
                v = v * keep;
            }
            if (projectKey is not null) k = projectKey(h, k);            // (B, K, D)
            if (projectValue is not null) v = projectValue(h, v);
            var scores = matmul(q, k.transpose(1, 2)) / Math.Sqrt(d);
            outputs.Add(matmul(scores.softmax(-1), v));
        }
        var merged = cat(outputs.ToArray(), -1);
        return attention.Output!.forward(merged);
    }

    private static Tensor LinearProjection(SequenceProjection p, int head, Tensor k)
    {
        var w = p.Weight[p.Groups == 1 ? 0 : head];                      // (K, N)
        var b = p.Bias![p.Groups == 1 ? 0 : head];                       // (K)
        return matmul(w.narrow(1, 0, k.shape[1]), k) + b.unsqueeze(-1);  // (B, K, D)
    }

    [TestMethod]
    public void WithIdentityProjectionsAndKEqualToN_LinformerEqualsFullSoftmaxAttention()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        const int n = 24, c = 16, heads = 2, d = 8;
        var e = new SequenceProjection("e", ProjectionMethod.Learnable, n, n, 1, d);
        using (no_grad())
        {
            e.Weight.copy_(eye(n).unsqueeze(0));
            e.Bias!.zero_();
        }
        var attention = new LinformerSelfAttention("a", c, heads, d, 0.0, e, e, null);
        attention.eval();
        var x = randn(3, n, c);
        using var noGrad = no_grad();
        var linformer = attention.forward(x, null);
        var reference = ReferenceAttention(attention, x, heads, d, null, null, null);
        TensorAssert.Close(reference, linformer, Tolerances.ReorderedFloat32, "Linformer with E = F = I vs softmax attention");
    }

    [TestMethod]
    [DataRow(1, true, DisplayName = "E shared by heads, E is F (kv/layerwise): input projected first")]
    [DataRow(1, false, DisplayName = "E, F shared by heads (headwise)")]
    [DataRow(3, false, DisplayName = "E, F per head (none)")]
    public void BatchedHeadsEqualThePerHeadReference(int groups, bool eIsF)
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        const int n = 97, k = 13, c = 12, heads = 3, d = 5;   // odd sizes, custom head width (3·5 ≠ 12)
        var e = new SequenceProjection("e", ProjectionMethod.Learnable, n, k, groups, d);
        var f = eIsF ? e : new SequenceProjection("f", ProjectionMethod.Learnable, n, k, groups, d);
        var attention = new LinformerSelfAttention("a", c, heads, d, 0.0, e, f, null);
        attention.eval();
        var x = randn(2, n, c);
        var mask = ones(2, n, dtype: @bool);
        mask[1, TensorIndex.Slice(80, null)] = tensor(false);
        using var noGrad = no_grad();
        var actual = attention.forward(x, mask);
        var reference = ReferenceAttention(attention, x, heads, d,
            (h, t) => LinearProjection(e, h, t), (h, t) => LinearProjection(f, h, t), mask);
        TensorAssert.Close(reference, actual, Tolerances.ReorderedFloat32, $"groups={groups}, E is F={eIsF}");
    }

    [TestMethod]
    [DataRow(false, DisplayName = "fused")]
    [DataRow(true, DisplayName = "written out (attention captured)")]
    public void FullAttentionWithAMaskEqualsSoftmaxOverTheRealKeysOnly(bool capture)
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        const int n = 19, c = 12, heads = 3, d = 4;
        var attention = new LinformerSelfAttention("a", c, heads, d, 0.0, null, null, null) { CaptureAttention = capture };
        attention.eval();
        var x = randn(2, n, c);
        var mask = ones(2, n, dtype: @bool);
        mask[1, TensorIndex.Slice(7, null)] = tensor(false);
        using var noGrad = no_grad();
        var actual = attention.forward(x, mask);
        // The reference sees only the real positions of each row: padded keys must not exist for the softmax.
        TensorAssert.Close(ReferenceAttention(attention, x.narrow(0, 0, 1), heads, d, null, null, null), actual.narrow(0, 0, 1),
            Tolerances.ReorderedFloat32, "row without padding");
        TensorAssert.Close(ReferenceAttention(attention, x.narrow(0, 1, 1).narrow(1, 0, 7), heads, d, null, null, null),
            actual.narrow(0, 1, 1).narrow(1, 0, 7), Tolerances.ReorderedFloat32, "real positions of the padded row");
    }

    [TestMethod]
    public void ConvolutionProjectionGivesExactlyKPositions()
    {
        using var scope = NewDisposeScope();
        foreach (var (n, k) in new[] { (64, 16), (97, 97), (96, 1), (12, 4) })
        {
            var p = new SequenceProjection("c", ProjectionMethod.Convolution, n, k, 1, 6);
            var y = p.Project(randn(2, 3, n, 6));
            CollectionAssert.AreEqual(new long[] { 2, 3, k, 6 }, y.shape, $"n={n}, k={k}");
            var perHead = new SequenceProjection("c", ProjectionMethod.Convolution, n, k, 3, 6);
            CollectionAssert.AreEqual(new long[] { 2, 3, k, 6 }, perHead.Project(randn(2, 3, n, 6)).shape);
        }
    }

    [TestMethod]
    public void ConvolutionRejectsKThatDoesNotDivideNOrExceedsN()
    {
        var notDividing = Assert.ThrowsExactly<ArgumentException>(() => new SequenceProjection("c", ProjectionMethod.Convolution, 100, 30, 1, 4));
        StringAssert.Contains(notDividing.Message, "multiple of dim_k (30)");
        StringAssert.Contains(notDividing.Message, "(100)");
        var tooLarge = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SequenceProjection("c", ProjectionMethod.Convolution, 10, 20, 1, 4));
        StringAssert.Contains(tooLarge.Message, "dim_k (20) must not exceed the sequence length (10)");
    }

    [TestMethod]
    public void CapturedAttentionProbabilitiesAreDistributionsAndDoNotChangeTheOutput()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var e = new SequenceProjection("e", ProjectionMethod.Learnable, 40, 8, 1, 4);
        var attention = new LinformerSelfAttention("a", 16, 4, 4, 0.0, e, e, null);
        attention.eval();
        var x = randn(2, 40, 16);
        using var noGrad = no_grad();
        var plain = attention.forward(x, null);
        attention.CaptureAttention = true;
        var captured = attention.forward(x, null);
        TensorAssert.Close(plain, captured, Tolerances.ReorderedFloat32, "output with capture on");
        var maps = attention.LastAttention!;
        CollectionAssert.AreEqual(new long[] { 2, 4, 40, 8 }, maps.shape);
        TensorAssert.Close(ones(2, 4, 40), maps.sum(-1), 1e-5, "rows of the attention maps sum to 1");
    }
}
