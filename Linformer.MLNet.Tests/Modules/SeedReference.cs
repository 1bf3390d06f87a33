using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

// Test-only tools that stand in for linformer-pytorch 0.19.3 where Python is not available:
//   SeedArguments      the seed's constructor arguments with its defaults (Linformer / LinformerLM)
//   SeedReference      a deliberately naive forward pass computed straight from a state dict (per-head loops,
//                      explicit matmuls, softmax / LayerNorm / GELU / Conv1d written out; no library module)
//   SeedStateDict      a random state dict with the seed's names and shapes for any arguments (shared copies equal)
//   SeedSafeTensors    a small safetensors writer (and an independent reader)
//   SeedCaseFolder     writes case.json + weights.safetensors + io.safetensors like the recorded fixtures
//   SeedSweepCase      one generated case end to end: arguments -> weights -> reference output -> folder
// Everything here is written from Fixtures/README.md and the seed's documented semantics, not from the library.

/// <summary>
/// The constructor arguments of linformer-pytorch 0.19.3's <c>Linformer</c> or <c>LinformerLM</c>, parsed from
/// the JSON <c>kwargs</c> of a case with the seed's defaults for the omitted ones.
/// </summary>
internal sealed class SeedArguments
{
    /// <summary>Every keyword <c>Linformer.__init__</c> accepts.</summary>
    public static readonly IReadOnlyList<string> LinformerNames =
    [
        "input_size", "channels", "dim_k", "dim_ff", "dim_d", "dropout_ff", "nhead", "depth", "dropout", "activation",
        "checkpoint_level", "parameter_sharing", "k_reduce_by_layer", "full_attention", "include_ff",
        "w_o_intermediate_dim", "decoder_mode", "causal", "method", "ff_intermediate",
    ];

    /// <summary>Every keyword <c>LinformerLM.__init__</c> accepts.</summary>
    public static readonly IReadOnlyList<string> LanguageModelNames = [.. LinformerNames, "num_tokens", "emb_dim", "return_emb", "dropout_tokens"];

    public required string ClassName { get; init; }

    /// <summary>The kwargs exactly as given (written verbatim to case.json).</summary>
    public required string KwargsJson { get; init; }

    public bool IsLanguageModel => ClassName == "LinformerLM";
    public int InputSize { get; private init; }
    public int Channels { get; private init; }
    public int DimK { get; private init; }
    public int DimFF { get; private init; }
    public int? DimD { get; private init; }
    public double DropoutFF { get; private init; }
    public int NHead { get; private init; }
    public int Depth { get; private init; }
    public double Dropout { get; private init; }
    public string Activation { get; private init; } = "gelu";
    public string CheckpointLevel { get; private init; } = "C0";
    public string ParameterSharing { get; private init; } = "layerwise";
    public int KReduceByLayer { get; private init; }
    public bool FullAttention { get; private init; }
    public bool IncludeFF { get; private init; } = true;
    public int? WoIntermediateDim { get; private init; }
    public bool DecoderMode { get; private init; }
    public bool Causal { get; private init; }
    public string Method { get; private init; } = "learnable";
    public int? FFIntermediate { get; private init; }
    public int NumTokens { get; private init; }
    public int? EmbDim { get; private init; }
    public bool ReturnEmb { get; private init; }

    /// <summary><c>LinformerLM</c>'s dropout on the embedded tokens: off in eval mode, so the forward pass ignores it.</summary>
    public double DropoutTokens { get; private init; }

    /// <summary>The seed's head width: <c>channels // nhead if dim_d is None else dim_d</c>.</summary>
    public int HeadDim => DimD ?? Channels / NHead;

    /// <summary>The token-embedding width of <c>LinformerLM</c> (<c>emb_dim</c>, default <c>channels</c>).</summary>
    public int EmbeddingWidth => EmbDim ?? Channels;

    /// <summary>True when <c>LinformerLM</c> wraps its Linformer in <c>ProjectInOut</c> (emb_dim != channels).</summary>
    public bool ProjectsInOut => IsLanguageModel && EmbeddingWidth != Channels;

    /// <summary>Name prefix of the Linformer's <c>seq</c> list in the state dict.</summary>
    public string Root => !IsLanguageModel ? "" : ProjectsInOut ? "linformer.fn." : "linformer.";

    /// <summary>False for <c>method="no_params"</c>, whose E/F matrices are plain tensors the seed never saves.</summary>
    public bool SavesProjections => Method != "no_params";

    /// <summary>The k of layer <paramref name="layer"/>'s E/F: layerwise sharing builds one projection with dim_k for all layers.</summary>
    public int LayerDimK(int layer) => ParameterSharing == "layerwise" ? DimK : Math.Max(1, DimK - layer * KReduceByLayer);

    /// <summary>The <c>Conv1d</c> kernel (= stride) of a convolution projection to <paramref name="k"/>: <c>n // k</c>.</summary>
    public int ConvolutionKernel(int k) => InputSize / k;

    /// <summary>State-dict prefix of layer <paramref name="layer"/>'s attention residual block.</summary>
    public string AttentionBlock(int layer) => $"{Root}seq.{(IncludeFF ? 2 * layer : layer)}.";

    /// <summary>State-dict prefix of layer <paramref name="layer"/>'s feed-forward residual block.</summary>
    public string FeedForwardBlock(int layer) => $"{Root}seq.{2 * layer + 1}.";

    /// <summary>A human-readable one-liner of the effective arguments.</summary>
    public override string ToString()
        => $"{ClassName}(n={InputSize}, C={Channels}, k={DimK}, H={NHead}, d={HeadDim}, depth={Depth}, sharing={ParameterSharing}, " +
           $"method={Method}, k_reduce={KReduceByLayer}, full={FullAttention}, ff={IncludeFF}, act={Activation}, w_o_mid={WoIntermediateDim?.ToString(CultureInfo.InvariantCulture) ?? "-"}" +
           (IsLanguageModel ? $", tokens={NumTokens}, emb={EmbeddingWidth}" : "") + ")";

    /// <summary>
    /// Parses kwargs the way Python binds them: unknown keywords, missing required ones, and values of the wrong
    /// type are errors (<see cref="ArgumentException"/>).
    /// </summary>
    public static SeedArguments Parse(string className, string kwargsJson)
    {
        bool lm = className switch
        {
            "Linformer" => false,
            "LinformerLM" => true,
            _ => throw new ArgumentException($"Unknown seed class '{className}'.", nameof(className)),
        };
        using var doc = JsonDocument.Parse(kwargsJson);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ArgumentException("kwargs must be a JSON object.", nameof(kwargsJson));
        var kw = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal);
        var known = lm ? LanguageModelNames : LinformerNames;
        foreach (var key in kw.Keys)
            if (!known.Contains(key)) throw new ArgumentException($"{className}() got an unexpected keyword argument '{key}'.", nameof(kwargsJson));

        JsonElement? Get(string name) => kw.TryGetValue(name, out var v) ? v : null;
        int? NullableInt(string name)
        {
            if (Get(name) is not { } v || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
            throw new ArgumentException($"'{name}' must be an integer or None; got {v.GetRawText()}.", nameof(kwargsJson));
        }
        int Int(string name, int? fallback)
        {
            if (Get(name) is { ValueKind: not JsonValueKind.Null }) return NullableInt(name)!.Value;
            return fallback ?? throw new ArgumentException($"{className}() missing required argument '{name}'.", nameof(kwargsJson));
        }
        double Double(string name, double fallback)
        {
            if (Get(name) is not { } v) return fallback;
            if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
            throw new ArgumentException($"'{name}' must be a number; got {v.GetRawText()}.", nameof(kwargsJson));
        }
        bool Bool(string name, bool fallback)
        {
            if (Get(name) is not { } v) return fallback;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ArgumentException($"'{name}' must be true or false; got {v.GetRawText()}.", nameof(kwargsJson)),
            };
        }
        string String(string name, string fallback, params string[] allowed)
        {
            if (Get(name) is not { } v) return fallback;
            if (v.ValueKind != JsonValueKind.String) throw new ArgumentException($"'{name}' must be a string; got {v.GetRawText()}.", nameof(kwargsJson));
            string s = v.GetString()!;
            if (!allowed.Contains(s)) throw new ArgumentException($"'{name}' must be one of {string.Join(", ", allowed)}; got '{s}'.", nameof(kwargsJson));
            return s;
        }

        return new SeedArguments
        {
            ClassName = className,
            KwargsJson = kwargsJson,
            InputSize = Int("input_size", null),
            Channels = Int("channels", null),
            DimK = Int("dim_k", lm ? 64 : null),
            DimFF = Int("dim_ff", lm ? 1024 : 256),
            DimD = NullableInt("dim_d"),
            DropoutFF = Double("dropout_ff", lm ? 0.1 : 0.15),
            NHead = Int("nhead", 4),
            Depth = Int("depth", lm ? 2 : 1),
            Dropout = Double("dropout", lm ? 0.05 : 0.1),
            Activation = String("activation", "gelu", "gelu", "relu"),
            CheckpointLevel = String("checkpoint_level", "C0", "C0", "C1", "C2"),
            ParameterSharing = String("parameter_sharing", "layerwise", "none", "headwise", "kv", "layerwise"),
            KReduceByLayer = Int("k_reduce_by_layer", 0),
            FullAttention = Bool("full_attention", false),
            IncludeFF = Bool("include_ff", true),
            WoIntermediateDim = NullableInt("w_o_intermediate_dim"),
            DecoderMode = Bool("decoder_mode", false),
            Causal = Bool("causal", false),
            Method = String("method", "learnable", "learnable", "convolution", "no_params"),
            FFIntermediate = NullableInt("ff_intermediate"),
            NumTokens = lm ? Int("num_tokens", null) : 0,
            EmbDim = lm ? NullableInt("emb_dim") : null,
            ReturnEmb = lm && Bool("return_emb", false),
            DropoutTokens = lm ? Double("dropout_tokens", 0.1) : 0,
        };
    }
}

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

/// <summary>
/// Random state dicts shaped exactly like linformer-pytorch 0.19.3's for given arguments: the seed's names (every
/// head's <c>heads.h.E</c>/<c>.F</c> listed, as <c>state_dict()</c> does for shared modules), the seed's shapes,
/// random values, and equal copies wherever the seed shares one module.
/// </summary>
internal static class SeedStateDict
{
    /// <summary>Generates a state dict (float32 CPU tensors, insertion order = the seed's order). The caller disposes the tensors.</summary>
    /// <exception cref="ArgumentException">The seed itself could not build a model from these arguments.</exception>
    public static Dictionary<string, Tensor> Generate(SeedArguments a, long seed)
    {
        if (a.FFIntermediate is not null) throw new ArgumentException("ff_intermediate changes the layer widths; not generated.");
        if (a.DecoderMode) throw new ArgumentException("decoder_mode builds a different model; not generated.");
        int c = a.Channels, n = a.InputSize, h = a.NHead, d = a.HeadDim;
        if (c <= 0 || n <= 0 || h <= 0 || d <= 0 || a.Depth <= 0 || a.DimFF <= 0)
            throw new ArgumentException($"The seed cannot build {a}.");

        using var g = new Generator((ulong)seed);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        Tensor Normal(double std, params long[] shape) => randn(shape, generator: g).mul_(std);
        void Add(string name, Tensor t) => result.Add(name, t);
        void AddLinear(string prefix, int inFeatures, int outFeatures)
        {
            Add(prefix + "weight", Normal(1.0 / Math.Sqrt(inFeatures), outFeatures, inFeatures));
            Add(prefix + "bias", Normal(0.1, outFeatures));
        }
        void AddNorm(string prefix)
        {
            Add(prefix + "weight", Normal(0.2, c).add_(1.0));
            Add(prefix + "bias", Normal(0.2, c));
        }
        (Tensor Weight, Tensor Bias) NewProjection(int k)
        {
            if (k <= 0) throw new ArgumentException($"The seed cannot build a projection to k = {k}.");
            if (a.Method == "convolution")
            {
                int kernel = a.ConvolutionKernel(k);
                if (kernel <= 0) throw new ArgumentException($"The seed cannot build Conv1d with kernel n // k = {n} // {k} = 0.");
                return (Normal(1.0 / Math.Sqrt(d * kernel), d, d, kernel), Normal(0.1, d));   // nn.Conv1d(d, d, s, stride=s)
            }
            return (Normal(Math.Sqrt(2.0 / (n + k)), k, n), Normal(0.1, k));                  // nn.Linear(n, k), xavier-normal scale
        }
        void AddProjectionCopy(string prefix, (Tensor Weight, Tensor Bias) p)
        {
            Add(prefix + "weight", p.Weight.clone());
            Add(prefix + "bias", p.Bias.clone());
        }

        var owned = new List<Tensor>();
        (Tensor Weight, Tensor Bias) Owned((Tensor Weight, Tensor Bias) p) { owned.Add(p.Weight); owned.Add(p.Bias); return p; }

        if (a.IsLanguageModel)
        {
            if (a.NumTokens <= 0 || a.EmbeddingWidth <= 0) throw new ArgumentException($"The seed cannot build {a}.");
            Add("to_token_emb.weight", Normal(1.0, a.NumTokens, a.EmbeddingWidth));
            Add("pos_emb.inv_freq", SeedReference.InverseFrequencies(a.EmbeddingWidth));
        }

        (Tensor Weight, Tensor Bias)? everywhere = a.SavesProjections && a.ParameterSharing == "layerwise" ? Owned(NewProjection(a.DimK)) : null;
        for (int layer = 0; layer < a.Depth; layer++)
        {
            string block = a.AttentionBlock(layer);
            string fn = block + "fn.";
            if (a.SavesProjections)
            {
                int k = a.LayerDimK(layer);
                (Tensor Weight, Tensor Bias)? layerE = null, layerF = null;
                switch (a.ParameterSharing)
                {
                    case "layerwise": layerE = layerF = everywhere; break;
                    case "kv": layerE = layerF = Owned(NewProjection(k)); break;
                    case "headwise": layerE = Owned(NewProjection(k)); layerF = Owned(NewProjection(k)); break;
                    case "none": break;
                }
                for (int head = 0; head < h; head++)
                {
                    var e = layerE ?? Owned(NewProjection(k));
                    var f = layerF ?? Owned(NewProjection(k));
                    AddProjectionCopy($"{fn}heads.{head}.E.", e);
                    AddProjectionCopy($"{fn}heads.{head}.F.", f);
                }
            }
            foreach (var which in new[] { "to_q", "to_k", "to_v" })
                for (int head = 0; head < h; head++)
                    Add($"{fn}{which}.{head}.weight", Normal(1.0 / Math.Sqrt(c), d, c));
            if (a.WoIntermediateDim is { } mid)
            {
                if (mid <= 0) throw new ArgumentException($"The seed cannot build w_o_1 with {mid} outputs.");
                AddLinear(fn + "w_o_1.", h * d, mid);
                AddLinear(fn + "w_o_2.", mid, c);
            }
            else AddLinear(fn + "w_o.", h * d, c);
            AddNorm(block + "norm.");
            if (a.IncludeFF)
            {
                string ff = a.FeedForwardBlock(layer);
                AddLinear(ff + "fn.w_1.", c, a.DimFF);
                AddLinear(ff + "fn.w_2.", a.DimFF, c);
                AddNorm(ff + "norm.");
            }
        }
        if (a.ProjectsInOut)
        {
            AddLinear("linformer.project_in.", a.EmbeddingWidth, c);
            AddLinear("linformer.project_out.", c, a.EmbeddingWidth);
        }
        foreach (var t in owned.Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>()) t.Dispose();
        return result;
    }
}

/// <summary>A small safetensors writer (test-only) and an independent reader for the dtypes the cases use.</summary>
internal static class SeedSafeTensors
{
    /// <summary>Writes tensors in the given order: 8-byte little-endian header length, JSON header padded with spaces to 8 bytes, raw little-endian data.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var blobs = new List<(string Name, string Dtype, long[] Shape, byte[] Data)>();
        foreach (var (name, tensor) in tensors) blobs.Add((name, DtypeName(tensor.dtype), tensor.shape, Bytes(tensor)));

        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, dtype, shape, data) in blobs)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long s in shape) json.WriteNumberValue(s);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += data.Length;
            }
            json.WriteEndObject();
        }
        var header = headerStream.ToArray().ToList();
        while (header.Count % 8 != 0) header.Add((byte)' ');

        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Count);
        file.Write(length);
        file.Write(header.ToArray());
        foreach (var blob in blobs) file.Write(blob.Data);
    }

    /// <summary>Reads F32, F64, I64, I32 and BOOL tensors; independent of the library's reader.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        int dataStart = 8 + headerLength;
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            string dtype = entry.Value.GetProperty("dtype").GetString()!;
            long[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets");
            int begin = dataStart + offsets[0].GetInt32(), end = dataStart + offsets[1].GetInt32();
            var span = bytes.AsSpan(begin, end - begin);
            result[entry.Name] = dtype switch
            {
                "F32" => tensor(Enumerable.Range(0, span.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(begin + 4 * i))).ToArray(), shape, float32),
                "F64" => tensor(Enumerable.Range(0, span.Length / 8).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(begin + 8 * i))).ToArray(), shape, float64),
                "I64" => tensor(Enumerable.Range(0, span.Length / 8).Select(i => BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(begin + 8 * i))).ToArray(), shape, int64),
                "I32" => tensor(Enumerable.Range(0, span.Length / 4).Select(i => BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(begin + 4 * i))).ToArray(), shape, int32),
                "BOOL" => tensor(span.ToArray().Select(b => b != 0).ToArray(), shape, @bool),
                _ => throw new InvalidDataException($"{Path.GetFileName(path)}: dtype {dtype} of '{entry.Name}' is not read by the test reader."),
            };
        }
        return result;
    }

    private static string DtypeName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"The test writer does not write {type}."),
    };

    private static byte[] Bytes(Tensor t)
    {
        using var c = t.detach().cpu().contiguous();
        long count = c.numel();
        if (count == 0) { _ = DtypeName(c.dtype); return []; }   // TorchSharp's accessor cannot copy out an empty tensor
        switch (c.dtype)
        {
            case ScalarType.Float32:
            {
                var values = c.data<float>().ToArray();
                var bytes = new byte[4 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                return bytes;
            }
            case ScalarType.Float64:
            {
                var values = c.data<double>().ToArray();
                var bytes = new byte[8 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(8 * i), values[i]);
                return bytes;
            }
            case ScalarType.Int64:
            {
                var values = c.data<long>().ToArray();
                var bytes = new byte[8 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), values[i]);
                return bytes;
            }
            case ScalarType.Int32:
            {
                var values = c.data<int>().ToArray();
                var bytes = new byte[4 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), values[i]);
                return bytes;
            }
            case ScalarType.Bool:
                return c.data<bool>().ToArray().Select(b => b ? (byte)1 : (byte)0).ToArray();
            default:
                throw new NotSupportedException($"The test writer does not write {c.dtype}.");
        }
    }
}

/// <summary>Writes a case folder laid out like <c>Fixtures/linformer-pytorch/*</c>.</summary>
internal static class SeedCaseFolder
{
    /// <summary>Writes <c>case.json</c>, <c>weights.safetensors</c> and <c>io.safetensors</c> into <paramref name="folder"/> (created if needed).</summary>
    public static void Write(string folder, string className, string kwargsJson, IEnumerable<KeyValuePair<string, Tensor>> state,
        Tensor input, Tensor? inputMask, Tensor output)
    {
        Directory.CreateDirectory(folder);
        var weights = state.ToList();
        SeedSafeTensors.Write(Path.Combine(folder, "weights.safetensors"), weights);
        var io = new List<KeyValuePair<string, Tensor>> { new("input", input) };
        if (inputMask is not null) io.Add(new("input_mask", inputMask));
        io.Add(new("output", output));
        SeedSafeTensors.Write(Path.Combine(folder, "io.safetensors"), io);
        WriteCaseJson(folder, className, kwargsJson, weights.Select(w => w.Key), inputMask is not null);
    }

    /// <summary>Writes (or overwrites) only <c>case.json</c>; <paramref name="kwargsJson"/> goes in verbatim, valid or not.</summary>
    public static void WriteCaseJson(string folder, string className, string kwargsJson, IEnumerable<string> parameterNames, bool hasMask)
    {
        Directory.CreateDirectory(folder);
        using var stream = File.Create(Path.Combine(folder, "case.json"));
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("implementation", "linformer-pytorch");
        json.WriteString("class", className);
        json.WritePropertyName("kwargs");
        json.WriteRawValue(kwargsJson, skipInputValidation: false);
        json.WriteString("mode", "eval (dropout off)");
        json.WriteString("input", "io.safetensors:input");
        json.WriteString("expected_output", "io.safetensors:output");
        if (hasMask) json.WriteString("input_mask", "io.safetensors:input_mask");
        else json.WriteNull("input_mask");
        json.WriteString("generated_by", "Linformer.MLNet.Tests SeedReference (random weights, naive reference forward)");
        json.WriteStartArray("parameter_names");
        foreach (var name in parameterNames) json.WriteStringValue(name);
        json.WriteEndArray();
        json.WriteEndObject();
    }
}

/// <summary>
/// One generated reference case: arguments, random state dict, random input (and mask), and the naive reference's
/// output. Dispose it (or create it inside a dispose scope).
/// </summary>
internal sealed class SeedSweepCase : IDisposable
{
    public required SeedArguments Arguments { get; init; }
    public required Dictionary<string, Tensor> State { get; init; }
    public required Tensor Input { get; init; }
    public Tensor? InputMask { get; init; }
    public required Tensor Output { get; init; }

    /// <summary>
    /// Builds a case. <paramref name="paddedRows"/> &gt; 0 adds an input mask and that many padded batch rows (after
    /// one unpadded row), cycling through: suffix padding of half the sequence, only the first position real, a
    /// scattered mask, and a row with every position padded.
    /// </summary>
    public static SeedSweepCase Create(string className, string kwargsJson, int paddedRows = 0, long seed = 0)
    {
        if (seed == 0) seed = StableSeed(className + kwargsJson + paddedRows.ToString(CultureInfo.InvariantCulture));
        var a = SeedArguments.Parse(className, kwargsJson);
        var state = SeedStateDict.Generate(a, seed);
        Tensor? input = null, mask = null;
        try
        {
            using var g = new Generator((ulong)(seed ^ 0x5eed));
            int batch = Math.Max(2, paddedRows + 1), n = a.InputSize;
            input = a.IsLanguageModel
                ? randint(0, a.NumTokens, [batch, n], dtype: int64, generator: g)
                : randn([batch, n, a.Channels], generator: g);
            if (paddedRows > 0)
            {
                var real = new bool[batch * n];
                for (int b = 0; b < batch; b++)
                {
                    int pattern = (b - 1) % 4;   // row 0 unpadded
                    for (int p = 0; p < n; p++)
                        real[b * n + p] = b == 0 || pattern switch
                        {
                            0 => p < Math.Max(1, n / 2),
                            1 => p == 0,
                            2 => (p * 7 + b * 3) % 5 < 3,
                            _ => false,                  // every position padded: K and V all zero
                        };
                }
                mask = tensor(real, [batch, n], @bool);
            }
            var output = SeedReference.Forward(a, state, input, mask);
            return new SeedSweepCase { Arguments = a, State = state, Input = input, InputMask = mask, Output = output };
        }
        catch
        {
            foreach (var t in state.Values) t.Dispose();
            input?.Dispose();
            mask?.Dispose();
            throw;
        }
    }

    /// <summary>Writes this case as a folder that <c>PyTorchReferenceCase.Load</c> reads.</summary>
    public void WriteTo(string folder)
        => SeedCaseFolder.Write(folder, Arguments.ClassName, Arguments.KwargsJson, State, Input, InputMask, Output);

    /// <summary>A deterministic seed from a string (FNV-1a), so every row draws the same weights on every run.</summary>
    public static long StableSeed(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) { hash ^= b; hash *= 1099511628211UL; }
        return (long)(hash & 0x7fff_ffff_ffffUL) | 1;
    }

    public void Dispose()
    {
        foreach (var t in State.Values) t.Dispose();
        Input.Dispose();
        InputMask?.Dispose();
        Output.Dispose();
    }
}
