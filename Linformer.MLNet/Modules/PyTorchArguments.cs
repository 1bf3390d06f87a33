namespace Linformer.MLNet.Modules;

/// <summary>
/// The one table between the encoder's settings (<see cref="LinformerEncoderOptions"/>) and the constructor arguments
/// of <c>linformer-pytorch</c> (0.19.x), with the values of its string arguments. The PyTorch import reads arguments
/// through it, and validation messages name the argument from it.
/// </summary>
internal static class PyTorchArguments
{
    /// <summary>Each setting that has a <c>linformer-pytorch</c> argument, with that argument's name.</summary>
    public static readonly IReadOnlyDictionary<string, string> OfSetting = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [nameof(LinformerEncoderOptions.SequenceLength)] = "input_size",
        [nameof(LinformerEncoderOptions.ModelWidth)] = "channels",
        [nameof(LinformerEncoderOptions.ProjectedLength)] = "dim_k",
        [nameof(LinformerEncoderOptions.FeedForwardSize)] = "dim_ff",
        [nameof(LinformerEncoderOptions.HeadWidth)] = "dim_d",
        [nameof(LinformerEncoderOptions.FeedForwardDropout)] = "dropout_ff",
        [nameof(LinformerEncoderOptions.Heads)] = "nhead",
        [nameof(LinformerEncoderOptions.Depth)] = "depth",
        [nameof(LinformerEncoderOptions.Dropout)] = "dropout",
        [nameof(LinformerEncoderOptions.Activation)] = "activation",
        [nameof(LinformerEncoderOptions.Sharing)] = "parameter_sharing",
        [nameof(LinformerEncoderOptions.ProjectedLengthReductionPerLayer)] = "k_reduce_by_layer",
        [nameof(LinformerEncoderOptions.ProjectionMethod)] = "method",
        [nameof(LinformerEncoderOptions.FullAttention)] = "full_attention",
        [nameof(LinformerEncoderOptions.IncludeFeedForward)] = "include_ff",
        [nameof(LinformerEncoderOptions.OutputIntermediateSize)] = "w_o_intermediate_dim",
        [nameof(LinformerEncoderOptions.Causal)] = "causal",
        // LinformerLM only.
        [nameof(LinformerEncoderOptions.VocabularySize)] = "num_tokens",
        [nameof(LinformerEncoderOptions.EmbeddingSize)] = "emb_dim",
    };

    /// <summary>The settings that only <c>LinformerLM</c> takes.</summary>
    public static readonly IReadOnlySet<string> LanguageModelOnly = new HashSet<string>(StringComparer.Ordinal)
    {
        nameof(LinformerEncoderOptions.VocabularySize), nameof(LinformerEncoderOptions.EmbeddingSize),
    };

    /// <summary>The values of <c>parameter_sharing</c>.</summary>
    public static readonly IReadOnlyList<(string Value, ParameterSharing Setting)> SharingValues =
    [
        ("none", ParameterSharing.None), ("headwise", ParameterSharing.Headwise), ("kv", ParameterSharing.KeyValue), ("layerwise", ParameterSharing.Layerwise),
    ];

    /// <summary>The values of <c>method</c>.</summary>
    public static readonly IReadOnlyList<(string Value, ProjectionMethod Setting)> MethodValues =
    [
        ("learnable", ProjectionMethod.Learnable), ("convolution", ProjectionMethod.Convolution), ("no_params", ProjectionMethod.Fixed),
    ];

    /// <summary>The values of <c>activation</c>.</summary>
    public static readonly IReadOnlyList<(string Value, Activation Setting)> ActivationValues =
    [
        ("gelu", Activation.Gelu), ("relu", Activation.Relu),
    ];

    /// <summary>The argument of <paramref name="setting"/>.</summary>
    public static string Of(string setting)
        => OfSetting.TryGetValue(setting, out var argument) ? argument
         : throw new ArgumentOutOfRangeException(nameof(setting), setting, $"The encoder setting '{setting}' has no linformer-pytorch argument.");

    /// <summary>The seed's value for <paramref name="setting"/> (as in <c>parameter_sharing='kv'</c>).</summary>
    public static string ValueOf<T>(IReadOnlyList<(string Value, T Setting)> values, T setting) where T : struct, Enum
        => values.First(v => v.Setting.Equals(setting)).Value;

    /// <summary>A message's note naming the arguments of <paramref name="settings"/>: <c>" (linformer-pytorch: dim_k, input_size)"</c>.</summary>
    public static string Note(params string[] settings) => $" (linformer-pytorch: {string.Join(", ", settings.Select(Of))})";
}
