using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

// Shapes: B batch, N sequence length, K projected length (the paper's k), H heads, D head width, C model width (H·D),
// F feed-forward width.

/// <summary>What a part of the layer is: a dense per-position map, Linformer's own work, or elementwise work.</summary>
internal enum PartKind
{
    /// <summary>Per-position linear maps: Q/K/V, output, feed-forward (unchanged by Linformer).</summary>
    Dense,
    /// <summary>Sequence projections and the attention itself (what Linformer changes).</summary>
    Attention,
    /// <summary>Activation, residual adds, LayerNorm.</summary>
    Elementwise,
}

/// <summary>One timed part of the layer (or an alternative way to compute one), with its FLOPs.</summary>
internal sealed record ProfilePart(string Name, PartKind Kind, double Flops, InterleavedCase Case, string? Note = null)
{
    public Timing Timing => Case.Timing;
}

/// <summary>The parts of one layer at one length, the whole layer, and alternatives that show what a change would save.</summary>
internal sealed record LayerProfile(ModelSpec Model, int SequenceLength, Timing WholeLayer,
    IReadOnlyList<ProfilePart> Parts, IReadOnlyList<ProfilePart> Alternatives)
{
    public double SumOfPartsMs => Parts.Sum(p => p.Timing.MedianMs);
}

/// <summary>
/// Times the parts of one encoder layer in inference (eval, no_grad) by replaying the library's forward step by
/// step on the layer's own weights: each part runs alone, many times, on inputs computed beforehand, taking turns
/// with the other parts, the alternatives and the whole layer. The sum of the parts is compared with the whole
/// layer, so any cost outside the parts shows up as a difference.
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
        if (attention.Output is null) throw new InvalidOperationException("The profile expects a single output map.");
        var feedForward = layer.FeedForwardBlock ?? throw new InvalidOperationException("The profile expects a feed-forward block.");
        var feedForwardNorm = layer.FeedForwardNorm!;
        long b = profile.Batch, h = profile.Heads, d = profile.HeadWidth, c = profile.Channels, hd = h * d;
        double k = spec.ProjectedLength, f = profile.FeedForward, bn = (double)b * n;

        var x = randn(b, n, c);                                                       // (B, N, C)
        var parts = new List<ProfilePart>();
        var alternatives = new List<ProfilePart>();
        InterleavedCase Case(Func<Tensor> op) => new(() => { using var s = NewDisposeScope(); op(); }, null, profile.Parts, 1, measureMemory: false);
        // Adds a part and runs it once here, so that its result can feed the next part.
        Tensor Part(string name, PartKind kind, double flops, Func<Tensor> op, string? note = null)
        {
            parts.Add(new ProfilePart(name, kind, flops, Case(op), note));
            return op();
        }
        void Alternative(string name, PartKind kind, double flops, Func<Tensor> op, string? note = null)
            => alternatives.Add(new ProfilePart(name, kind, flops, Case(op), note));

        // The library's forward, step by step (LinformerSelfAttention.forward): Q; the inputs of the K/V maps (E·x
        // when the input is projected first); the K/V maps; the per-head projections; attention; merge + output map.
        var projections = attention.Projections;
        var kvWeight = attention.Qkv.weight!.narrow(0, hd, 2 * hd);                 // (2·H·D, C)
        Tensor SplitHeads(Tensor t) => t.view(b, t.shape[1], h, d).transpose(1, 2);   // (B, L, H·D) -> (B, H, L, D)
        bool linformer = !projections.IsFullAttention, inputFirst = projections.ProjectsInputFirst;

        var qh = Part("Q map  x·W_q", PartKind.Dense, 2 * bn * c * c, () => attention.Queries(x));   // (B, H, N, D)
        var inputs = projections.Inputs(x, null);
        if (inputFirst)
            Part("sequence projection  E·x", PartKind.Attention, 2 * b * k * n * c, () => projections.Inputs(x, null).ForKey, "(K, N) @ (B, N, C)");
        var (k0, v0) = projections.Maps(inputs, kvWeight, SplitHeads);                // (B, H, K or N, D), strided views
        if (inputFirst) Part("K, V maps on k rows + bias", PartKind.Attention, 4 * b * k * c * c, () => projections.Maps(inputs, kvWeight, SplitHeads).Value);
        else Part("K, V maps  x·W_kv", PartKind.Dense, 4 * bn * c * c, () => projections.Maps(inputs, kvWeight, SplitHeads).Value);
        var (kh, vh) = projections.Project(k0, v0);                                   // (B, H, K, D)
        if (linformer && !inputFirst)
        {
            Part("per-head projections  E_i·K_i, F_i·V_i + bias", PartKind.Attention, 4 * b * k * n * c,
                () => projections.Project(k0, v0).Value, "(H, K, N) @ (B, H, N, D), K and V strided views");
            var k0c = k0.contiguous();
            var v0c = v0.contiguous();
            Alternative("per-head projections of contiguous K, V", PartKind.Attention, 4 * b * k * n * c,
                () => projections.Project(k0c, v0c).Value, "inputs copied to (B, H, N, D) beforehand");
            Alternative("copy K, V to contiguous (B, H, N, D)", PartKind.Elementwise, 0, () => { k0.contiguous(); return v0.contiguous(); });
        }

        double keys = linformer ? k : n;
        var attended = Part($"attention over {(linformer ? "k" : "N")} positions (fused SDPA)", PartKind.Attention, 4 * bn * keys * c,
            () => attention.Attend(qh, kh, vh, null), "softmax(Q·Kᵀ/√D)·V on strided head views");   // (B, H, N, D), laid out as (B, N, H, D)
        // SDPA lays its output out like its query: with the strided head view of Q the merge below is a free view;
        // with a contiguous (B, H, N, D) query it costs a copy. The alternative therefore includes copies and merge.
        Alternative("contiguous Q, K, V copies + fused SDPA + merge copy", PartKind.Attention, 4 * bn * keys * c,
            () => nn.functional.scaled_dot_product_attention(qh.contiguous(), kh.contiguous(), vh.contiguous()).transpose(1, 2).reshape(b, n, hd),
            "compare with the attention part (its merge is a free view)");
        Alternative("attention written out: matmul, softmax, matmul", PartKind.Attention, 4 * bn * keys * c,
            () => LinformerAttentionFunction.Attend(qh, kh, vh, null, 0.0, writtenOut: true, out _), "materialises (B, H, N, L)");

        var y = Part("merge heads + output map", PartKind.Dense, 2 * bn * c * c, () => attention.MergeHeads(attended));   // (B, N, C)
        var h1 = Part("residual + LayerNorm (attention)", PartKind.Elementwise, 0, () => layer.AttentionNorm.forward(x + y));
        // The feed-forward block in its three steps (its dropouts are identities in eval).
        var u = Part("feed-forward W_1 (C → F) + bias", PartKind.Dense, 2 * bn * c * f, () => feedForward.W1.forward(h1));   // (B, N, F)
        var g = Part("GELU (exact, erf)", PartKind.Elementwise, 0, () => nn.functional.gelu(u), "on (B, N, F)");   // the options' Activation.Gelu
        var ff = Part("feed-forward W_2 (F → C) + bias", PartKind.Dense, 2 * bn * c * f, () => feedForward.W2.forward(g));   // (B, N, C)
        Part("residual + LayerNorm (feed-forward)", PartKind.Elementwise, 0, () => feedForwardNorm.forward(h1 + ff));
        Alternative("whole feed-forward block (module forward)", PartKind.Dense, 4 * bn * c * f, () => feedForward.forward(h1),
            "compare with the sum of its three parts");

        // Parts, alternatives and the whole layer take turns (Harness.RunInterleaved), so a part and the alternative it is
        // compared with see the same machine conditions.
        var wholeCase = Case(() => layer.forward(x, null));
        Harness.RunInterleaved([.. parts.Select(p => p.Case), .. alternatives.Select(p => p.Case), wholeCase], null, null);
        return new LayerProfile(spec, n, wholeCase.Timing, parts, alternatives);
    }
}
