using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

// Shapes: B batch, n sequence length, K projected length (the paper's k; K = n for full attention), H heads,
// D head width, C model width.

/// <summary>
/// Scaled dot-product attention over (projected) keys, the last step of Linformer attention (Wang et al. 2020,
/// Section 4, eq. 7):
/// <code>
/// head_i = softmax( Q_i (E_i K_i)ᵀ / √d ) · (F_i V_i)
///   Q_i, K_i, V_i : (n, d)    E_i, F_i : (k, n)    scores : (n, k)    head_i : (n, d)
/// </code>
/// The projections E·K and F·V come from <see cref="LinformerSelfAttention.Projections"/>; with full attention
/// there are none and K = n.
/// </summary>
internal static class LinformerAttentionFunction
{
    /// <summary>
    /// softmax(Q Kᵀ/√D) V over K keys, all heads at once: the fused kernel (never stores the (n, K) scores) or,
    /// with <paramref name="probabilities"/> requested, written out.
    /// </summary>
    /// <param name="query">(B, H, n, D)</param>
    /// <param name="key">(B, H, K, D)</param>
    /// <param name="value">(B, H, K, D)</param>
    /// <param name="keyMask">(B, 1, 1, K) boolean, true = the key takes part; null = every key does.</param>
    /// <param name="dropout">Dropout probability of the attention weights (0 in eval), applied once.</param>
    /// <param name="writtenOut">Compute the probabilities explicitly and return them in <paramref name="probabilities"/>.</param>
    /// <param name="probabilities">(B, H, n, K) when <paramref name="writtenOut"/>, else null.</param>
    /// <returns>(B, H, n, D)</returns>
    internal static Tensor Attend(Tensor query, Tensor key, Tensor value, Tensor? keyMask, double dropout, bool writtenOut,
        out Tensor? probabilities)
    {
        if (!writtenOut)
        {
            probabilities = null;
            // With bf16 inputs libtorch's CPU kernel keeps its softmax and sums in float32 (its accumulation type).
            return nn.functional.scaled_dot_product_attention(query, key, value, attn_mask: keyMask, p: dropout);
        }
        using var scope = NewDisposeScope();
        using var scale = (1.0 / Math.Sqrt(query.shape[^1])).ToScalar();   // explicit Scalar, alive until the call returns (docs/hardening.md)
        var scores = Autocast.Float32(matmul(query, key.transpose(-2, -1))).mul_(scale);   // (B, H, n, K), softmax in float32
        if (keyMask is not null) scores = scores.masked_fill_(keyMask.logical_not(), Scalars.NegativeInfinity);
        var p = scores.softmax(-1);
        var attended = matmul(Autocast.As(nn.functional.dropout(p, dropout, training: dropout > 0), value), value);   // (B, H, n, D)
        probabilities = p.MoveToOuterDisposeScope();
        return attended.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Multi-head Linformer self-attention: Q/K/V maps, E/F sequence projections, all heads in one batched call,
/// output map. <see cref="forward"/> is the whole algorithm in four steps, each a method of its own (the benchmark
/// profiler times them one by one).
/// </summary>
internal sealed class LinformerSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear qkv;                                         // (C) -> (3·H·D), no bias, as the seed's to_q/to_k/to_v
    private readonly Linear? output;                           // (H·D) -> (C), the seed's w_o
    private readonly Linear? output1;                          // (H·D) -> (I), w_o_1 when w_o_intermediate_dim is set
    private readonly Linear? output2;                          // (I) -> (C), w_o_2
    private readonly nn.Module<Tensor, Tensor> outputDropout;
    private readonly KeyValueProjections projections;          // not registered here when the encoder owns them

    private readonly int heads;
    private readonly int headWidth;
    private readonly double attentionDropout;

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
        projections = new KeyValueProjections(keyProjection, valueProjection);
        qkv = nn.Linear(channels, 3L * heads * headWidth, hasBias: false);
        if (outputIntermediateSize is { } inter)
        {
            output1 = nn.Linear((long)heads * headWidth, inter);
            output2 = nn.Linear(inter, channels);
        }
        else output = nn.Linear((long)heads * headWidth, channels);
        outputDropout = nn.Dropout(dropout);
        RegisterComponents();
        if (registerProjections)
        {
            if (keyProjection is not null) register_module("key_projection", keyProjection);
            if (valueProjection is not null && !ReferenceEquals(valueProjection, keyProjection)) register_module("value_projection", valueProjection);
        }
    }

    internal KeyValueProjections Projections => projections;
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
        var q = Queries(x);                                                       // (B, H, n, D)
        var (k, v) = KeysAndValues(x, keyPaddingMask);                           // (B, H, K, D) each
        var attended = Attend(q, k, v, keyPaddingMask);                          // (B, H, n, D)
        return outputDropout.forward(MergeHeads(attended)).MoveToOuterDisposeScope();
    }

    /// <summary>Step 1: Q = X W_q, split into heads: (B, n, C) → (B, H, n, D).</summary>
    internal Tensor Queries(Tensor x)
        => SplitHeads(Autocast.Linear(x, qkv.weight!.narrow(0, 0, (long)heads * headWidth)));

    /// <summary>Step 2: projected keys and values (B, H, K, D), padded positions zeroed before E and F.</summary>
    internal (Tensor Key, Tensor Value) KeysAndValues(Tensor x, Tensor? keyPaddingMask)
    {
        using var scope = NewDisposeScope();
        long hd = (long)heads * headWidth;
        var inputs = projections.Inputs(x, keyPaddingMask);
        var (k, v) = projections.Maps(inputs, qkv.weight!.narrow(0, hd, 2 * hd), SplitHeads);
        var (kp, vp) = projections.Project(k, v);
        return (kp.MoveToOuterDisposeScope(), vp.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Step 3: attention of each query over the K keys, fused, or written out with <see cref="CaptureAttention"/>
    /// (then <see cref="LastAttention"/> holds the probabilities). Dropout on the weights in training only.
    /// </summary>
    internal Tensor Attend(Tensor query, Tensor key, Tensor value, Tensor? keyPaddingMask)
    {
        using var scope = NewDisposeScope();
        var keyMask = projections.KeyMask(keyPaddingMask);                      // (B, 1, 1, n) for full attention, else null
        var attended = LinformerAttentionFunction.Attend(query, key, value, keyMask, training ? attentionDropout : 0.0,
            CaptureAttention, out var probabilities);
        if (probabilities is not null)
        {
            LastAttention?.Dispose();
            LastAttention = probabilities.detach().clone().DetachFromDisposeScope();
        }
        return attended.MoveToOuterDisposeScope();
    }

    /// <summary>Step 4: merge the heads and apply the output map (without its dropout): (B, H, n, D) → (B, n, C).</summary>
    internal Tensor MergeHeads(Tensor attended)
    {
        using var scope = NewDisposeScope();
        var merged = attended.transpose(1, 2).reshape(attended.shape[0], attended.shape[2], (long)heads * headWidth);   // (B, n, H·D)
        var y = output is not null ? Autocast.Linear(merged, output) : Autocast.Linear(Autocast.Linear(merged, output1!), output2!);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>(B, L, H·D) → (B, H, L, D), a view.</summary>
    private Tensor SplitHeads(Tensor t) => t.view(t.shape[0], t.shape[1], heads, headWidth).transpose(1, 2);

    protected override void Dispose(bool disposing)
    {
        if (disposing) { LastAttention?.Dispose(); LastAttention = null; }
        base.Dispose(disposing);
    }
}

/// <summary>
/// E and F (possibly the same instance, or both null for full attention) and how they turn the input into the
/// keys and values the attention reads. Where E and F are shared by all heads and are pure sequence-axis linear maps,
/// the input is projected first: E (X W_k) = (E X) W_k, exact, with k × C instead of n × H·D rows per map.
/// Otherwise the K/V maps run on all n positions and E and F project each head.
/// </summary>
internal sealed class KeyValueProjections
{
    public KeyValueProjections(SequenceProjection? key, SequenceProjection? value)
    {
        if ((key is null) != (value is null))
            throw new ArgumentException("E and F must both be given (Linformer) or both be null (full attention).", nameof(value));
        Key = key;
        Value = value;
    }

    /// <summary>E, null for full attention.</summary>
    public SequenceProjection? Key { get; }

    /// <summary>F, null for full attention.</summary>
    public SequenceProjection? Value { get; }

    /// <summary>Full attention: no E and F, every position is a key.</summary>
    public bool IsFullAttention => Key is null;

    /// <summary>Whether the input is projected along the sequence axis before the K/V maps.</summary>
    public bool ProjectsInputFirst => Key is { Groups: 1, IsSequenceLinear: true } && Value is { Groups: 1, IsSequenceLinear: true };

    /// <summary>
    /// Inputs of the key and value maps: E·X and F·X (one tensor when E is F) when the input is projected first,
    /// else X itself. Rows of padded positions are zeroed first (the seed's rule): with the bias-free K/V maps this
    /// equals zeroing those rows of K and V.
    /// </summary>
    /// <returns>(B, K, C) each when projected first, else (B, n, C).</returns>
    public (Tensor ForKey, Tensor ForValue) Inputs(Tensor x, Tensor? keyPaddingMask)
    {
        if (keyPaddingMask is not null) x = x.masked_fill(keyPaddingMask.unsqueeze(-1).logical_not(), Scalars.Zero);   // (B, n, C)
        if (!ProjectsInputFirst) return (x, x);
        var forKey = Key!.ProjectLinear(x);                                                   // (B, K, C)
        return (forKey, ReferenceEquals(Key, Value) ? forKey : Value!.ProjectLinear(x));
    }

    /// <summary>
    /// The K and V maps on <see cref="Inputs"/>, split into heads: (B, H, K, D) with E's and F's bias added when the
    /// input was projected first, else (B, H, n, D). One matrix product when both maps read the same tensor.
    /// </summary>
    /// <param name="inputs">From <see cref="Inputs"/>.</param>
    /// <param name="keyValueWeight">(2·H·D, C): W_k then W_v.</param>
    /// <param name="splitHeads">(B, L, H·D) → (B, H, L, D).</param>
    public (Tensor Key, Tensor Value) Maps((Tensor ForKey, Tensor ForValue) inputs, Tensor keyValueWeight, Func<Tensor, Tensor> splitHeads)
    {
        long hd = keyValueWeight.shape[0] / 2;
        Tensor k, v;
        if (ReferenceEquals(inputs.ForKey, inputs.ForValue))
        {
            var kv = Autocast.Linear(inputs.ForKey, keyValueWeight);                          // (B, L, 2·H·D)
            (k, v) = (kv.narrow(-1, 0, hd), kv.narrow(-1, hd, hd));
        }
        else
        {
            k = Autocast.Linear(inputs.ForKey, keyValueWeight.narrow(0, 0, hd));              // (B, K, H·D)
            v = Autocast.Linear(inputs.ForValue, keyValueWeight.narrow(0, hd, hd));
        }
        // E's bias is per projected position, so it is added after the map (it does not commute with it).
        if (ProjectsInputFirst) (k, v) = (Key!.AddBias(k), Value!.AddBias(v));
        return (splitHeads(k), splitHeads(v));                                               // (B, H, L, D)
    }

    /// <summary>
    /// E·K and F·V per head (B, H, n, D) → (B, H, K, D) when the input was not projected first (per-head or
    /// convolution projections); the keys and values themselves otherwise.
    /// </summary>
    public (Tensor Key, Tensor Value) Project(Tensor key, Tensor value)
        => IsFullAttention || ProjectsInputFirst ? (key, value) : (Key!.Project(key), Value!.Project(value));

    /// <summary>
    /// The softmax mask of the keys: (B, 1, 1, n), true = the key takes part, for full attention, so padded keys get
    /// no weight; null for Linformer, whose K projected keys each mix all positions and cannot be masked one by one
    /// (there padded rows are zeroed before E and F instead). A row without any real position keeps every key, as
    /// its outputs are padding anyway and an empty softmax would give NaN.
    /// </summary>
    public Tensor? KeyMask(Tensor? keyPaddingMask)
    {
        if (keyPaddingMask is null || !IsFullAttention) return null;
        using var scope = NewDisposeScope();
        var empty = keyPaddingMask.any(1, keepdim: true).logical_not();                      // (B, 1)
        return keyPaddingMask.logical_or(empty).unsqueeze(1).unsqueeze(1).MoveToOuterDisposeScope();   // (B, 1, 1, n)
    }
}
