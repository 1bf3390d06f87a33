using System.Globalization;
using System.Text.Json;

namespace Linformer.MLNet.Tests.Modules;

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
