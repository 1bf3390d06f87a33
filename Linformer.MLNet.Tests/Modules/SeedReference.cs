using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

// Test-only tools (one file each in this folder) that stand in for linformer-pytorch 0.19.3 where Python is not
// available:
//   SeedArguments      the seed's constructor arguments with its defaults (Linformer / LinformerLM)
//   SeedReference      a deliberately naive forward pass computed straight from a state dict (per-head loops,
//                      explicit matmuls, softmax / LayerNorm / GELU / Conv1d written out; no library module)
//   SeedStateDict      a random state dict with the seed's names and shapes for any arguments (shared copies equal)
//   SeedSafeTensors    a small safetensors writer (and an independent reader)
//   SeedCaseFolder     writes case.json + weights.safetensors + io.safetensors like the recorded fixtures
//   SeedSweepCase      one generated case end to end: arguments -> weights -> reference output -> folder
// All of them are written from Fixtures/README.md and the seed's documented semantics, not from the library.

/// <summary>
/// A plain re-implementation of linformer-pytorch 0.19.3's forward pass in eval mode (dropout off), read directly
/// from a state dict with the seed's parameter names. Deliberately naive: one head at a time, every linear map an
/// explicit matmul, softmax, LayerNorm, GELU and the strided Conv1d written out. Float32 throughout, like the seed.
/// </summary>
internal static class SeedReference
{
    private const double LayerNormEpsilon = 1e-5;   // nn.LayerNorm's default

    /// <summary>
    /// Runs the seed's forward pass.
    /// </summary>
    /// <param name="a">The constructor arguments.</param>
    /// <param name="state">The state dict (seed names).</param>
    /// <param name="input">float32 (B, n, channels) for <c>Linformer</c>, int64 token ids (B, n) for <c>LinformerLM</c>; n = input_size.</param>
    /// <param name="inputMask">Optional bool (B, n), true = real position (the seed's <c>input_mask</c> keyword).</param>
    /// <returns>(B, n, channels) or, for <c>LinformerLM</c>, (B, n, emb_dim); the caller disposes it.</returns>
    /// <exception cref="NotSupportedException">Arguments whose computation this reference does not reproduce.</exception>
    public static Tensor Forward(SeedArguments a, IReadOnlyDictionary<string, Tensor> state, Tensor input, Tensor? inputMask)
    {
        if (a.Causal) throw new NotSupportedException("The reference does not implement causal=True.");
        if (a.DecoderMode) throw new NotSupportedException("The reference does not implement decoder_mode=True.");
        if (a.FFIntermediate is not null) throw new NotSupportedException("The reference does not implement ff_intermediate.");
        if (a.IsLanguageModel && !a.ReturnEmb) throw new NotSupportedException("The reference implements LinformerLM with return_emb=True only.");
        if (!a.SavesProjections && !a.FullAttention)
            throw new NotSupportedException("method='no_params' projections are not in the state dict; the seed's output cannot be reproduced from it.");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor x;
        if (a.IsLanguageModel)
        {
            if (input.dim() != 2 || input.dtype != int64) throw new ArgumentException("LinformerLM input must be int64 token ids (B, n).", nameof(input));
            long batch = input.shape[0], n = input.shape[1];
            var table = Get(state, "to_token_emb.weight");                                    // (num_tokens, W)
            x = table.index_select(0, input.reshape(-1)).reshape(batch, n, table.shape[1]);   // (B, n, W)
            x = SinusoidalPositions(Get(state, "pos_emb.inv_freq"), n) + x;                    // the seed: pos_emb(x) + x
            if (a.ProjectsInOut) x = Linear(x, state, "linformer.project_in.");              // (B, n, C)
        }
        else
        {
            if (input.dim() != 3 || input.dtype != float32) throw new ArgumentException("Linformer input must be float32 (B, n, channels).", nameof(input));
            x = input;
        }
        if (x.shape[1] != a.InputSize) throw new ArgumentException($"The seed asserts n == input_size ({a.InputSize}); got {x.shape[1]}.", nameof(input));
        if (x.shape[2] != a.Channels) throw new ArgumentException($"The seed asserts the width == channels ({a.Channels}); got {x.shape[2]}.", nameof(input));
        if (inputMask is not null && (inputMask.dtype != ScalarType.Bool || !inputMask.shape.SequenceEqual(new[] { x.shape[0], x.shape[1] })))
            throw new ArgumentException("input_mask must be bool (B, n).", nameof(inputMask));

        for (int layer = 0; layer < a.Depth; layer++)
        {
            string attention = a.AttentionBlock(layer);
            x = LayerNorm(x + MultiHeadAttention(a, state, attention + "fn.", x, inputMask), state, attention + "norm.");
            if (a.IncludeFF)
            {
                string ff = a.FeedForwardBlock(layer);
                x = LayerNorm(x + FeedForward(a, state, ff + "fn.", x), state, ff + "norm.");
            }
        }
        if (a.ProjectsInOut) x = Linear(x, state, "linformer.project_out.");                  // (B, n, W)
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>The seed's position embedding (1, n, W): <c>cat(sin(p·f), cos(p·f))</c> from its <c>inv_freq</c> buffer.</summary>
    public static Tensor SinusoidalPositions(Tensor inverseFrequencies, long length)
    {
        using var scope = NewDisposeScope();
        var positions = arange(length, dtype: float32);                                          // (n)
        var angles = positions.unsqueeze(1) * inverseFrequencies.unsqueeze(0);                   // (n, W/2): einsum("i,j->ij")
        return cat([angles.sin(), angles.cos()], 1).unsqueeze(0).MoveToOuterDisposeScope();      // (1, n, W)
    }

    /// <summary>The seed's <c>inv_freq</c> buffer for width <paramref name="width"/>: <c>1 / 100000^(arange(0, W, 2) / W)</c> in float32.</summary>
    public static Tensor InverseFrequencies(int width)
    {
        using var scope = NewDisposeScope();
        var exponents = arange(0, width, 2, dtype: float32) / (float)width;
        return (1.0f / pow(100000f, exponents)).MoveToOuterDisposeScope();
    }

    // MHAttention.forward: every head on its own, heads concatenated in order, then w_o (or w_o_1, w_o_2).
    private static Tensor MultiHeadAttention(SeedArguments a, IReadOnlyDictionary<string, Tensor> s, string fn, Tensor x, Tensor? mask)
    {
        var heads = new List<Tensor>();
        for (int h = 0; h < a.NHead; h++)
        {
            var q = Linear(x, Get(s, $"{fn}to_q.{h}.weight"), null);                 // (B, n, d)
            var k = Linear(x, Get(s, $"{fn}to_k.{h}.weight"), null);                 // (B, n, d)
            var v = Linear(x, Get(s, $"{fn}to_v.{h}.weight"), null);                 // (B, n, d)
            heads.Add(AttentionHead(a, s, $"{fn}heads.{h}.", q, k, v, mask));        // (B, n, d)
        }
        var merged = cat(heads, 2);                                                  // (B, n, H·d)
        if (a.WoIntermediateDim is null) return Linear(merged, s, fn + "w_o.");
        return Linear(Linear(merged, s, fn + "w_o_1."), s, fn + "w_o_2.");
    }

    // LinearAttentionHead.forward with the head's own E and F (shared copies are equal, so each head reads its names).
    private static Tensor AttentionHead(SeedArguments a, IReadOnlyDictionary<string, Tensor> s, string head, Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        if (mask is not null)
        {
            var padded = mask.logical_not().unsqueeze(2);                            // (B, n, 1)
            k = k.masked_fill(padded, 0f);
            v = v.masked_fill(padded, 0f);
        }
        var keysT = k.transpose(1, 2);                                               // (B, d, n)
        if (!a.FullAttention) keysT = Project(a, s, head + "E.", keysT);             // (B, d, k)
        float scale = MathF.Sqrt(q.shape[2]);                                        // torch.sqrt(torch.tensor(dim).float())
        var scores = q.matmul(keysT) / scale;                                        // (B, n, k)
        if (a.FullAttention && mask is not null)
        {
            // The library's one departure from the seed's forward: the seed's full attention gives zeroed padded keys
            // a score of 0, so they keep softmax weight; the library excludes them (−∞). A batch row without any
            // real position keeps every key (its outputs are padding).
            var excluded = mask.logical_not().logical_and(mask.any(1, keepdim: true)).unsqueeze(1);   // (B, 1, n)
            scores = scores.masked_fill(excluded, float.NegativeInfinity);
        }
        var probabilities = Softmax(scores);                                         // (B, n, k)
        var values = v;                                                              // (B, n, d)
        if (!a.FullAttention) values = Project(a, s, head + "F.", v.transpose(1, 2)).transpose(1, 2);   // (B, k, d)
        return probabilities.matmul(values);                                         // (B, n, d)
    }

    // E or F applied to t (B, d, n) along its last axis -> (B, d, k).
    private static Tensor Project(SeedArguments a, IReadOnlyDictionary<string, Tensor> s, string prefix, Tensor t)
    {
        var weight = Get(s, prefix + "weight");
        var bias = Get(s, prefix + "bias");
        return a.Method switch
        {
            "learnable" => Linear(t, weight, bias),                                  // nn.Linear(n, k): (k, n), (k)
            "convolution" => StridedConv1d(t, weight, bias),                         // nn.Conv1d(d, d, n // k, stride=n // k)
            _ => throw new NotSupportedException($"method '{a.Method}'."),
        };
    }

    /// <summary>
    /// <c>nn.Conv1d</c> with kernel size = stride = s, written out: t (B, C_in, n), weight (C_out, C_in, s),
    /// bias (C_out) → (B, C_out, ⌊(n − s) / s⌋ + 1); output j sees positions [j·s, j·s + s).
    /// </summary>
    internal static Tensor StridedConv1d(Tensor t, Tensor weight, Tensor bias)
    {
        long batch = t.shape[0], channelsIn = t.shape[1], n = t.shape[2], kernel = weight.shape[2];
        long outputs = (n - kernel) / kernel + 1;
        var flatWeight = weight.reshape(weight.shape[0], channelsIn * kernel);       // (C_out, C_in·s), index ci·s + tau
        var columns = new List<Tensor>();
        for (long j = 0; j < outputs; j++)
        {
            var window = t.narrow(2, j * kernel, kernel).reshape(batch, channelsIn * kernel);   // (B, C_in·s), index ci·s + tau
            columns.Add(window.matmul(flatWeight.t()) + bias);                       // (B, C_out)
        }
        return stack(columns, 2);                                                    // (B, C_out, outputs)
    }

    private static Tensor FeedForward(SeedArguments a, IReadOnlyDictionary<string, Tensor> s, string fn, Tensor x)
    {
        var hidden = Linear(x, s, fn + "w_1.");
        hidden = a.Activation switch
        {
            "gelu" => Gelu(hidden),
            "relu" => hidden.clamp_min(0.0),
            _ => throw new NotSupportedException($"activation '{a.Activation}'."),
        };
        return Linear(hidden, s, fn + "w_2.");
    }

    /// <summary>Exact GELU (torch's default, erf form): x · ½ · (1 + erf(x / √2)).</summary>
    internal static Tensor Gelu(Tensor x) => x * 0.5 * ((x / Math.Sqrt(2.0)).erf() + 1.0);

    /// <summary>Softmax over the last axis, written out with the max subtracted.</summary>
    internal static Tensor Softmax(Tensor scores)
    {
        var shifted = scores - scores.amax([-1], keepdim: true);
        var e = shifted.exp();
        return e / e.sum(-1, keepdim: true);
    }

    private static Tensor LayerNorm(Tensor x, IReadOnlyDictionary<string, Tensor> s, string prefix)
        => LayerNorm(x, Get(s, prefix + "weight"), Get(s, prefix + "bias"));

    /// <summary><c>nn.LayerNorm</c> over the last axis written out: biased variance, ε = 1e-5.</summary>
    internal static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias)
    {
        var mean = x.mean([-1], keepdim: true);
        var centered = x - mean;
        var variance = (centered * centered).mean([-1], keepdim: true);              // biased, as nn.LayerNorm
        return centered / (variance + LayerNormEpsilon).sqrt() * weight + bias;
    }

    private static Tensor Linear(Tensor x, IReadOnlyDictionary<string, Tensor> s, string prefix)
        => Linear(x, Get(s, prefix + "weight"), Get(s, prefix + "bias"));

    private static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        var y = x.matmul(weight.t());
        return bias is null ? y : y + bias;
    }

    private static Tensor Get(IReadOnlyDictionary<string, Tensor> s, string name)
        => s.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"The state dict has no '{name}'.");
}
