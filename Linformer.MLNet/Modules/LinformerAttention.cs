using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

// Shapes: B batch, n sequence length, K projected length (the paper's k), H heads, D head width.

/// <summary>
/// The Linformer attention algorithm in one place (Wang et al. 2020, Section 4, eq. 7):
/// <code>
/// head_i = softmax( Q_i (E_i K_i)ᵀ / √d ) · (F_i V_i)
///   Q_i, K_i, V_i : (n, d)    E_i, F_i : (k, n)    scores : (n, k)    head_i : (n, d)
/// </code>
/// Keys and values are projected along the sequence axis to k positions, then ordinary fused attention runs
/// over those k positions, so time and memory grow as O(n·k) instead of O(n²).
/// </summary>
public static class LinformerAttentionFunction
{
    /// <summary>
    /// Linformer attention on per-head tensors.
    /// </summary>
    /// <param name="query">(B, H, n, D)</param>
    /// <param name="key">(B, H, n, D), before projection</param>
    /// <param name="value">(B, H, n, D), before projection</param>
    /// <param name="keyProjection">E; null for full attention.</param>
    /// <param name="valueProjection">F; null for full attention.</param>
    /// <param name="keyPaddingMask">(B, n) boolean, true = real position; masked keys and values are zeroed before the projection (the seed's rule).</param>
    /// <param name="dropout">Dropout probability of the attention weights (applied once, inside the fused kernel).</param>
    /// <returns>(B, H, n, D)</returns>
    internal static Tensor Attend(Tensor query, Tensor key, Tensor value, SequenceProjection? keyProjection,
        SequenceProjection? valueProjection, Tensor? keyPaddingMask, double dropout)
    {
        using var scope = NewDisposeScope();
        if (keyPaddingMask is not null)
        {
            var keep = keyPaddingMask.unsqueeze(1).unsqueeze(-1);   // (B, 1, n, 1)
            using var zero = 0f.ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
            key = key.masked_fill(keep.logical_not(), zero);
            value = value.masked_fill(keep.logical_not(), zero);
        }
        if (keyProjection is not null) key = keyProjection.Project(key);          // (B, H, K, D)
        if (valueProjection is not null) value = valueProjection.Project(value);  // (B, H, K, D)
        return AttendProjected(query, key, value, dropout).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Scaled dot-product attention of queries (B, H, n, D) over already projected keys and values
    /// (B, H, K, D): the fused kernel, scale 1/√D, softmax over the K positions.
    /// </summary>
    internal static Tensor AttendProjected(Tensor query, Tensor projectedKey, Tensor projectedValue, double dropout)
        => nn.functional.scaled_dot_product_attention(query, projectedKey, projectedValue, p: dropout);

    /// <summary>
    /// The attention probabilities softmax(Q Kᵀ/√D) over projected keys: (B, H, n, K). Written out, for
    /// inspection (attention maps) and as the reference the fused path is tested against.
    /// </summary>
    internal static Tensor Probabilities(Tensor query, Tensor projectedKey)
    {
        using var scope = NewDisposeScope();
        using var scale = (1.0 / Math.Sqrt(query.shape[^1])).ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
        return matmul(query, projectedKey.transpose(-2, -1)).mul_(scale).softmax(-1).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Multi-head Linformer self-attention: fused Q/K/V maps, E/F sequence projections, all heads in one batched
/// call, output map. Where E and F are shared by all heads and are pure sequence-axis linear maps, the input
/// is projected along the sequence axis first (k × C instead of n × H·D per map: exact, fewer FLOPs).
/// </summary>
internal sealed class LinformerSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear qkv;                                         // (C) -> (3·H·D), no bias, as the seed's to_q/to_k/to_v
    private readonly Linear? output;                           // (H·D) -> (C), the seed's w_o
    private readonly Linear? output1;                          // (H·D) -> (I), w_o_1 when w_o_intermediate_dim is set
    private readonly Linear? output2;                          // (I) -> (C), w_o_2
    private readonly nn.Module<Tensor, Tensor> outputDropout;
    private readonly Projections projections;                  // not registered here when the encoder owns them

    private readonly int heads;
    private readonly int headWidth;
    private readonly double attentionDropout;

    /// <summary>E and F, possibly the same instance, or both null for full attention.</summary>
    internal sealed record Projections(SequenceProjection? Key, SequenceProjection? Value);

    /// <summary>Attention probabilities of the last forward, (B, H, n, K), when <see cref="CaptureAttention"/> is on.</summary>
    public Tensor? LastAttention { get; private set; }

    /// <summary>Whether forward keeps the attention probabilities (slower: the fused kernel is not used).</summary>
    public bool CaptureAttention { get; set; }

    public LinformerSelfAttention(string name, int channels, int heads, int headWidth, double dropout,
        SequenceProjection? keyProjection, SequenceProjection? valueProjection, int? outputIntermediateSize,
        bool registerProjections = true) : base(name)
    {
        this.heads = heads;
        this.headWidth = headWidth;
        attentionDropout = dropout;
        qkv = nn.Linear(channels, 3L * heads * headWidth, hasBias: false);
        if (outputIntermediateSize is { } inter)
        {
            output1 = nn.Linear((long)heads * headWidth, inter);
            output2 = nn.Linear(inter, channels);
        }
        else output = nn.Linear((long)heads * headWidth, channels);
        outputDropout = nn.Dropout(dropout);
        projections = new Projections(keyProjection, valueProjection);
        RegisterComponents();
        if (registerProjections)
        {
            if (keyProjection is not null) register_module("key_projection", keyProjection);
            if (valueProjection is not null && !ReferenceEquals(valueProjection, keyProjection)) register_module("value_projection", valueProjection);
        }
    }

    internal SequenceProjection? KeyProjection => projections.Key;
    internal SequenceProjection? ValueProjection => projections.Value;
    internal Linear Qkv => qkv;
    internal Linear? Output => output;
    internal Linear? Output1 => output1;
    internal Linear? Output2 => output2;

    /// <param name="x">(B, n, C)</param>
    /// <param name="keyPaddingMask">(B, n) boolean, true = real position, or null.</param>
    /// <returns>(B, n, C)</returns>
    public override Tensor forward(Tensor x, Tensor? keyPaddingMask)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], n = x.shape[1];
        long hd = (long)heads * headWidth;
        var (e, f) = (projections.Key, projections.Value);
        var w = qkv.weight!;                                         // (3·H·D, C)
        double p = training ? attentionDropout : 0.0;

        Tensor SplitHeads(Tensor t) => t.view(batch, t.shape[1], heads, headWidth).transpose(1, 2);   // (B, L, H·D) -> (B, H, L, D)

        Tensor attended;
        bool sharedLinear = e is not null && f is not null && e.Groups == 1 && f.Groups == 1 && e.IsSequenceLinear && f.IsSequenceLinear;
        if (sharedLinear && !CaptureAttention)
        {
            // E (K_i) = E (X W_k,i) = (E X) W_k,i: project the input once for all heads.
            var q = SplitHeads(nn.functional.linear(x, w.narrow(0, 0, hd)));                 // (B, H, n, D)
            using var zero = 0f.ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
            var xm = keyPaddingMask is null ? x : x.masked_fill(keyPaddingMask.unsqueeze(-1).logical_not(), zero);
            Tensor k, v;
            if (ReferenceEquals(e, f))
            {
                var xe = e!.ProjectLinear(xm);                                                // (B, K, C)
                var kv = nn.functional.linear(xe, w.narrow(0, hd, 2 * hd));                   // (B, K, 2·H·D)
                k = e.AddBias(kv.narrow(-1, 0, hd));
                v = e.AddBias(kv.narrow(-1, hd, hd));
            }
            else
            {
                k = e!.AddBias(nn.functional.linear(e.ProjectLinear(xm), w.narrow(0, hd, hd)));       // (B, K, H·D)
                v = f!.AddBias(nn.functional.linear(f.ProjectLinear(xm), w.narrow(0, 2 * hd, hd)));   // (B, K, H·D)
            }
            attended = LinformerAttentionFunction.AttendProjected(q, SplitHeads(k), SplitHeads(v), p);   // (B, H, n, D)
        }
        else
        {
            var qkvOut = nn.functional.linear(x, w);                                          // (B, n, 3·H·D)
            var q = SplitHeads(qkvOut.narrow(-1, 0, hd));
            var k = SplitHeads(qkvOut.narrow(-1, hd, hd));
            var v = SplitHeads(qkvOut.narrow(-1, 2 * hd, hd));
            if (CaptureAttention)
            {
                if (keyPaddingMask is not null)
                {
                    var drop = keyPaddingMask.unsqueeze(1).unsqueeze(-1).logical_not();       // (B, 1, n, 1)
                    using var zero = 0f.ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
                    k = k.masked_fill(drop, zero);
                    v = v.masked_fill(drop, zero);
                }
                var kp = e is null ? k : e.Project(k);
                var vp = f is null ? v : f.Project(v);
                var probabilities = LinformerAttentionFunction.Probabilities(q, kp);            // (B, H, n, K)
                LastAttention?.Dispose();
                LastAttention = probabilities.detach().clone().DetachFromDisposeScope();
                attended = matmul(nn.functional.dropout(probabilities, p, training), vp);
            }
            else attended = LinformerAttentionFunction.Attend(q, k, v, e, f, keyPaddingMask, p);
        }

        var merged = attended.transpose(1, 2).reshape(batch, n, hd);                         // (B, n, H·D)
        var y = output is not null ? output.forward(merged) : output2!.forward(output1!.forward(merged));
        return outputDropout.forward(y).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { LastAttention?.Dispose(); LastAttention = null; }
        base.Dispose(disposing);
    }
}
