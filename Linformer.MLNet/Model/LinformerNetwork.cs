using System.Text.Json.Serialization;
using Linformer.MLNet.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Model;

// Shapes: B batch, n sequence length, C model width, I input channels (float input), V vocabulary, L classes.

/// <summary>The supervised head a model carries.</summary>
internal enum HeadKind { None, Classification, Regression }

/// <summary>Everything needed to rebuild a <see cref="LinformerNetwork"/>; saved in the model as JSON.</summary>
internal sealed record NetworkSpec
{
    public required LinformerEncoderOptions Encoder { get; init; }
    /// <summary>Channels per position of float input; 0 for token input.</summary>
    public int InputChannels { get; init; }
    public HeadKind Head { get; init; }
    /// <summary>Classes of the classification head (L).</summary>
    public int Classes { get; init; }
    /// <summary>Whether the self-supervised heads exist (they do once the model was pre-trained without labels).</summary>
    public bool PretrainingHead { get; init; }
    /// <summary>
    /// Whether the last three rows of the token embedding are the reserved padding, unknown and mask tokens
    /// (<see cref="TokenLayout"/>; format 1.4). Left out of the JSON when false, so older settings read unchanged.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool SpecialTokens { get; init; }

    [JsonIgnore] public bool UsesTokens => Encoder.UsesTokens;
    [JsonIgnore] public int Width => Encoder.UsesTokens ? Encoder.EffectiveEmbeddingSize : Encoder.ModelWidth;
}

/// <summary>
/// The trainable model behind the ML.NET transformer: an optional input projection (I → C for float input whose
/// channel count differs from the model width), the <see cref="LinformerEncoder"/>, pooling, and heads.
/// </summary>
internal sealed class LinformerNetwork : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear? input_projection;
    private readonly LinformerEncoder encoder;
    private readonly Linear? head;
    private readonly Linear? pretraining_head;

    public NetworkSpec Spec { get; }

    public LinformerNetwork(NetworkSpec spec, LinformerEncoder? encoder = null) : base("network")
    {
        Spec = spec;
        var o = spec.Encoder;
        if (!o.UsesTokens && spec.InputChannels != o.ModelWidth) input_projection = nn.Linear(spec.InputChannels, o.ModelWidth);
        this.encoder = encoder ?? new LinformerEncoder(o);
        head = spec.Head switch
        {
            HeadKind.Classification => nn.Linear(spec.Width, spec.Classes),
            HeadKind.Regression => nn.Linear(spec.Width, 1),
            _ => null,
        };
        if (spec.PretrainingHead)
            pretraining_head = o.UsesTokens ? nn.Linear(spec.Width, o.VocabularySize!.Value) : nn.Linear(spec.Width, spec.InputChannels);
        RegisterComponents();
    }

    public LinformerEncoder Encoder => encoder;

    /// <summary>The float input map I → C, or null.</summary>
    internal Linear? InputProjection => input_projection;

    /// <summary>The supervised head's linear map, or null.</summary>
    internal Linear? HeadLayer => head;

    /// <summary>The precision of the matrix products: the encoder's, which the input map and pre-training head follow.</summary>
    public LinformerPrecision Precision { get => encoder.Precision; set => encoder.Precision = value; }

    /// <summary>Encodes (B, n, I) floats or (B, n) token ids to (B, n, C).</summary>
    public override Tensor forward(Tensor input, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        using var autocast = Autocast.Enter(encoder.Precision);
        var x = input_projection is null ? input : Autocast.Float32(Autocast.Linear(input, input_projection));
        return encoder.forward(x, mask).MoveToOuterDisposeScope();
    }

    /// <summary>Pools (B, n, C) to (B, C), or flattens to (B, n·C) for <see cref="LinformerOutputKind.Sequence"/>.</summary>
    public static Tensor Pool(Tensor encoded, Tensor? mask, LinformerOutputKind kind)
    {
        using var scope = NewDisposeScope();
        Tensor result = kind switch
        {
            LinformerOutputKind.FirstPosition => encoded.select(1, 0),
            LinformerOutputKind.Sequence => encoded.flatten(1),
            _ when mask is null => encoded.mean(new long[] { 1 }),
            _ => MaskedMean(encoded, mask),
        };
        return result.MoveToOuterDisposeScope();
    }

    private static Tensor MaskedMean(Tensor encoded, Tensor mask)
    {
        var m = mask.unsqueeze(-1).to_type(encoded.dtype);                    // (B, n, 1)
        var count = m.sum(1).clamp_min(Scalars.One);                                   // (B, 1)
        return (encoded * m).sum(1) / count;                                   // (B, C)
    }

    /// <summary>The supervised head on the mean-pooled encoding: (B, L) logits or (B) regression values.</summary>
    public Tensor Head(Tensor encoded, Tensor? mask)
    {
        if (head is null) throw new InvalidOperationException("This model has no supervised head.");
        using var scope = NewDisposeScope();
        var y = head.forward(Pool(encoded, mask, LinformerOutputKind.MeanPooled));
        return (Spec.Head == HeadKind.Regression ? y.squeeze(-1) : y).MoveToOuterDisposeScope();
    }

    /// <summary>The self-supervised head per position: (B, n, V) token logits or (B, n, I) reconstructed inputs.</summary>
    public Tensor PretrainingHead(Tensor encoded)
    {
        if (pretraining_head is null) throw new InvalidOperationException("This model has no pre-training head.");
        // A per-position map as wide as the vocabulary: in the encoder's precision; the loss reads float32.
        using var scope = NewDisposeScope();
        using var autocast = Autocast.Enter(encoder.Precision);
        return Autocast.Float32(Autocast.Linear(encoded, pretraining_head)).MoveToOuterDisposeScope();
    }

    /// <summary>Distinct trainable parameters (shared projections once).</summary>
    public IEnumerable<Parameter> DistinctParameters() => parameters();
}
