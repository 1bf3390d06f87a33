using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

// Shapes: B batch, N sequence length, K projected length (the paper's k), H heads, D head width, C model width (H·D),
// F feed-forward width.

/// <summary>One timed part of the layer (or an alternative way to compute one), with its FLOPs.</summary>
internal sealed record ProfilePart(string Name, double Flops, Timing Timing, string? Note = null);

/// <summary>The parts of one layer at one length, the whole layer, and alternatives that show what a change would save.</summary>
internal sealed record LayerProfile(ModelSpec Model, int SequenceLength, Timing WholeLayer,
    IReadOnlyList<ProfilePart> Parts, IReadOnlyList<ProfilePart> Alternatives)
{
    public double SumOfPartsMs => Parts.Sum(p => p.Timing.MedianMs);
}

/// <summary>
/// Times the parts of one encoder layer in inference (eval, no_grad) by replaying the library's forward step by
/// step on the layer's own weights: each part runs alone, many times, on inputs computed beforehand. The sum of
/// the parts is compared with the whole layer, so any cost outside the parts shows up as a difference.
/// </summary>
internal static class LayerProfiler
{
    public static LayerProfile Profile(ModelSpec spec, int n, RunProfile profile)
    {
        if (spec.Kind == ModelKind.TorchEncoderLayer) throw new ArgumentException("Only the library's encoder is profiled part by part.", nameof(spec));
        using var model = ModelUnderTest.Create(spec, n, profile);
        model.Train(false);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();

        var encoder = model.Encoder!;
        var layer = encoder.Layers[0];
        var attention = layer.Attention;
        var output = attention.Output ?? throw new InvalidOperationException("The profile expects a single output map.");
        var feedForward = layer.FeedForwardBlock ?? throw new InvalidOperationException("The profile expects a feed-forward block.");
        var feedForwardNorm = layer.FeedForwardNorm!;
        long b = profile.Batch, h = profile.Heads, d = profile.HeadWidth, c = profile.Channels, hd = h * d;
        double k = spec.ProjectedLength, f = profile.FeedForward, bn = (double)b * n;

        Tensor SplitHeads(Tensor t) => t.view(b, t.shape[1], h, d).transpose(1, 2);   // (B, L, H·D) -> (B, H, L, D)

        var x = randn(b, n, c);                                                       // (B, N, C)
        var w = attention.Qkv.weight!;                                                // (3·H·D, C)
        var parts = new List<(string Name, double Flops, Func<Tensor> Op, string? Note)>();
        var alternatives = new List<(string Name, double Flops, Func<Tensor> Op, string? Note)>();

        Tensor qh, kh, vh;                                                            // inputs of the attention
        var e = attention.KeyProjection;
        var fp = attention.ValueProjection;
        if (spec.Kind == ModelKind.Linformer && spec.Sharing == ParameterSharing.Layerwise)
        {
            // The library's shared path: project the input along the sequence first, E·X, then map K and V on k rows.
            var wq = w.narrow(0, 0, hd);
            var wkv = w.narrow(0, hd, 2 * hd);
            var q = nn.functional.linear(x, wq);                                      // (B, N, C)
            var xe = e!.ProjectLinear(x);                                             // (B, K, C)
            var kv = nn.functional.linear(xe, wkv);                                   // (B, K, 2·C)
            qh = SplitHeads(q);
            kh = SplitHeads(e.AddBias(kv.narrow(-1, 0, hd)));                         // (B, H, K, D)
            vh = SplitHeads(e.AddBias(kv.narrow(-1, hd, hd)));
            parts.Add(("Q map  x·W_q", 2 * bn * c * c, () => nn.functional.linear(x, wq), null));
            parts.Add(("sequence projection  E·x", 2 * b * k * n * c, () => e.ProjectLinear(x), "(K, N) @ (B, N, C)"));
            parts.Add(("K, V maps on k rows + bias", 4 * b * k * c * c,
                () => { var t = nn.functional.linear(xe, wkv); e.AddBias(t.narrow(-1, 0, hd)); return e.AddBias(t.narrow(-1, hd, hd)); }, null));
        }
        else
        {
            var qkv = nn.functional.linear(x, w);                                      // (B, N, 3·C)
            qh = SplitHeads(qkv.narrow(-1, 0, hd));
            var k0 = SplitHeads(qkv.narrow(-1, hd, hd));                              // (B, H, N, D), strided view
            var v0 = SplitHeads(qkv.narrow(-1, 2 * hd, hd));
            parts.Add(("Q, K, V maps  x·W_qkv", 6 * bn * c * c, () => nn.functional.linear(x, w), null));
            if (spec.Kind == ModelKind.Linformer)
            {
                kh = e!.Project(k0);                                                  // (B, H, K, D)
                vh = fp!.Project(v0);
                parts.Add(("per-head projections  E_i·K_i, F_i·V_i + bias", 4 * b * k * n * c,
                    () => { e.Project(k0); return fp.Project(v0); }, "(H, K, N) @ (B, H, N, D), K and V strided views"));
                var k0c = k0.contiguous();
                var v0c = v0.contiguous();
                alternatives.Add(("per-head projections of contiguous K, V", 4 * b * k * n * c,
                    () => { e.Project(k0c); return fp.Project(v0c); }, "inputs copied to (B, H, N, D) beforehand"));
                alternatives.Add(("copy K, V to contiguous (B, H, N, D)", 0,
                    () => { k0.contiguous(); return v0.contiguous(); }, null));
            }
            else
            {
                kh = k0;
                vh = v0;
            }
        }

        double keys = spec.Kind == ModelKind.Linformer ? k : n;
        var attended = nn.functional.scaled_dot_product_attention(qh, kh, vh);        // (B, H, N, D)
        parts.Add(($"attention over {(spec.Kind == ModelKind.Linformer ? "k" : "N")} positions (fused SDPA)", 4 * bn * keys * c,
            () => nn.functional.scaled_dot_product_attention(qh, kh, vh), "softmax(Q·Kᵀ/√D)·V"));
        var qc = qh.contiguous();
        var kc = kh.contiguous();
        var vc = vh.contiguous();
        alternatives.Add(("fused SDPA on contiguous Q, K, V", 4 * bn * keys * c,
            () => nn.functional.scaled_dot_product_attention(qc, kc, vc), "inputs copied to (B, H, L, D) beforehand"));
        alternatives.Add(("attention written out: matmul, softmax, matmul", 4 * bn * keys * c,
            () => matmul(matmul(qh, kh.transpose(-2, -1)).mul_(1.0 / Math.Sqrt(d)).softmax(-1), vh), "materialises (B, H, N, L)"));

        var merged = attended.transpose(1, 2).reshape(b, n, hd);                     // (B, N, C)
        var y = output.forward(merged);
        parts.Add(("merge heads + output map", 2 * bn * c * c,
            () => output.forward(attended.transpose(1, 2).reshape(b, n, hd)), null));
        var h1 = layer.AttentionNorm.forward(x + y);
        parts.Add(("residual + LayerNorm (attention)", 0, () => layer.AttentionNorm.forward(x + y), null));
        var ff = feedForward.forward(h1);
        parts.Add(("feed-forward  W_2·GELU(W_1·x)", 4 * bn * c * f, () => feedForward.forward(h1), null));
        parts.Add(("residual + LayerNorm (feed-forward)", 0, () => feedForwardNorm.forward(h1 + ff), null));

        Timing Time(Func<Tensor> op) => Harness.Time(() => { using var s = NewDisposeScope(); op(); }, profile.Parts);

        var whole = Time(() => layer.forward(x, null));
        var timedParts = parts.Select(p => new ProfilePart(p.Name, p.Flops, Time(p.Op), p.Note)).ToList();
        var timedAlternatives = alternatives.Select(p => new ProfilePart(p.Name, p.Flops, Time(p.Op), p.Note)).ToList();
        return new LayerProfile(spec, n, whole, timedParts, timedAlternatives);
    }
}
